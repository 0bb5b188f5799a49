"""Services a project can ask its dev container for, and the client libraries that show a
project talks to one (which `cairn doctor` reads in the project's dependency files)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cairn.errors import UsageError


@dataclass(frozen=True)
class Service:
    name: str
    compose: dict[str, Any]  # the service's entry in .devcontainer/compose.yaml
    env: dict[str, str]  # how the dev container reaches it
    clients: dict[str, tuple[str, ...]] = field(default_factory=dict)  # language -> packages


SERVICES: dict[str, Service] = {
    "redis": Service(
        name="redis",
        compose={"image": "redis:7.4-bookworm", "restart": "unless-stopped"},
        env={"REDIS_URL": "redis://redis:6379"},
        clients={
            "go": ("github.com/redis/go-redis", "github.com/gomodule/redigo"),
            "python": ("redis",),
            "node": ("redis", "ioredis"),
            "java": ("jedis", "lettuce-core", "spring-boot-starter-data-redis"),
        },
    ),
    "kafka": Service(
        name="kafka",
        # KRaft: one node is broker and controller; the dev container reaches it as kafka:9092
        compose={
            "image": "apache/kafka:3.9.1",
            "restart": "unless-stopped",
            "environment": {
                "KAFKA_NODE_ID": "1",
                "KAFKA_PROCESS_ROLES": "broker,controller",
                "KAFKA_LISTENERS": "PLAINTEXT://:9092,CONTROLLER://:9093",
                "KAFKA_ADVERTISED_LISTENERS": "PLAINTEXT://kafka:9092",
                "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
                "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@kafka:9093",
                "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
                "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
                "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
            },
        },
        env={"KAFKA_BOOTSTRAP_SERVERS": "kafka:9092"},
        clients={
            "go": (
                "github.com/segmentio/kafka-go",
                "github.com/IBM/sarama",
                "github.com/confluentinc/confluent-kafka-go",
            ),
            "python": ("kafka-python", "kafka-python-ng", "confluent-kafka", "aiokafka"),
            "node": ("kafkajs",),
            "java": ("kafka-clients", "spring-kafka"),
        },
    ),
}


def parse_services(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(s.strip() for s in text.split(",") if s.strip()))
    unknown = [n for n in names if n not in SERVICES]
    if unknown:
        raise UsageError(
            f"cairn init knows no service '{unknown[0]}'.",
            f"Try: --services with any of {', '.join(SERVICES)}.",
        )
    return names
