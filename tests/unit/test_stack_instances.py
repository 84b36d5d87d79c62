"""Several instances of a service: named after it, on ports of their own, with the service's own environment."""

from __future__ import annotations

from pathlib import Path

from infra.stack import Stack


def test_instances_share_the_service_database_and_the_first_instance_addresses() -> None:
    stack = Stack(data_dir=Path("unused"), ports={"triage": 7001, "coordination": 7002, "billing_shadow": 7003},
                  database_urls={"coordination": "postgresql://db/coordination"}, instances={"coordination": 3})
    stack.instance_ports.update({"coordination#2": 7102, "coordination#3": 7103})

    assert stack.instance_names("coordination") == ["coordination", "coordination#2", "coordination#3"]
    assert stack.instance_names("triage") == ["triage"]
    assert stack.urls("coordination") == ["http://127.0.0.1:7002", "http://127.0.0.1:7102", "http://127.0.0.1:7103"]
    assert Stack.service_of("coordination#2") == "coordination"
    env = stack.service_env("coordination#3")
    assert env["COORDINATION_DATABASE_URL"] == "postgresql://db/coordination"
    # Tokens are issued, and browsers sent, by the first instance of each service.
    assert (env["REGIOZORG_ISSUER"], env["COORDINATION_PUBLIC_URL"]) == ("http://127.0.0.1:7001",
                                                                         "http://127.0.0.1:7002")
