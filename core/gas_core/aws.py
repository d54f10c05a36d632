"""boto3 clients built from settings: the only place an AWS client is made.

The same code runs against moto locally and AWS in production; only `aws_endpoint_url`,
region and credentials differ. boto3 clients are thread-safe, so one set serves all worker
threads of a process.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from gas_core.resources import Queue, Topic

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_ses import SESClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sts import STSClient

    from gas_core.settings import GasSettings


class AwsClients:
    """Lazily created, cached boto3 clients for one settings object."""

    def __init__(self, settings: GasSettings) -> None:
        self.settings = settings
        credentials: dict[str, Any] = {}
        if settings.aws_access_key_id and settings.aws_secret_access_key:
            credentials = {
                "aws_access_key_id": settings.aws_access_key_id.get_secret_value(),
                "aws_secret_access_key": settings.aws_secret_access_key.get_secret_value(),
            }
        self._session = boto3.session.Session(region_name=settings.aws_region, **credentials)
        self._config = Config(
            retries={"mode": "standard", "max_attempts": settings.aws_max_attempts},
            # Path-style URLs work with an emulator on 127.0.0.1; virtual-host style in AWS.
            s3={"addressing_style": "path" if settings.aws_endpoint_url else "virtual"},
            signature_version="s3v4",
            # Worker threads share clients; leave room above the default pool of 10.
            max_pool_connections=50,
            connect_timeout=5,
            read_timeout=60,
        )

    def _client(self, service: str) -> Any:
        return self._session.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.settings.aws_endpoint_url,
            config=self._config,
        )

    @functools.cached_property
    def s3(self) -> S3Client:
        return self._client("s3")  # type: ignore[no-any-return]

    @functools.cached_property
    def sqs(self) -> SQSClient:
        return self._client("sqs")  # type: ignore[no-any-return]

    @functools.cached_property
    def sns(self) -> SNSClient:
        return self._client("sns")  # type: ignore[no-any-return]

    @functools.cached_property
    def dynamodb(self) -> DynamoDBClient:
        return self._client("dynamodb")  # type: ignore[no-any-return]

    @functools.cached_property
    def ses(self) -> SESClient:
        return self._client("ses")  # type: ignore[no-any-return]

    @functools.cached_property
    def sts(self) -> STSClient:
        return self._client("sts")  # type: ignore[no-any-return]

    @functools.cache  # noqa: B019 - one cache per AwsClients, which lives as long as the process
    def account_id(self) -> str:
        return self.sts.get_caller_identity()["Account"]

    def topic_arn(self, topic: Topic) -> str:
        name = self.settings.names.topic(topic)
        return f"arn:aws:sns:{self.settings.aws_region}:{self.account_id()}:{name}"

    @functools.cache  # noqa: B019
    def queue_url(self, queue: Queue) -> str:
        return self.sqs.get_queue_url(QueueName=self.settings.names.queue(queue))["QueueUrl"]

    @functools.cache  # noqa: B019
    def dlq_url(self, queue: Queue) -> str:
        return self.sqs.get_queue_url(QueueName=self.settings.names.dlq(queue))["QueueUrl"]
