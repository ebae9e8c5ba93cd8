"""Mutual TLS on the job's channel: a real TLS aggregator server on 127.0.0.1, real clients."""
from __future__ import annotations

import queue

import grpc
import pytest

from fedscale.cloud import commons
from fedscale.cloud.channels import job_api_pb2 as pb
from fedscale.cloud.channels import job_api_pb2_grpc as pb_grpc
from fedscale.cloud.channels.client import AggregatorConnection, AggregatorLost, Unauthenticated
from fedscale.cloud.channels.server import GRPC_OPTIONS, JOINED, AggregatorServer
from fedscale.cloud.channels.tls import (CA_ENV, CLIENT_CERT_ENV, CLIENT_KEY_ENV, SERVER_CERT_ENV, SERVER_KEY_ENV,
                                        SERVER_ONLY, TARGET_NAME_OPTION, JobCertificates)
from fedscale.cloud.config_parser import load_job
from fedscale.deploy.submit import run_to_end
from tests.jobs import check_documented, documented_events, write_job

SECRET = "s3cret-for-tls-tests"
CERTS = JobCertificates.create(["127.0.0.1", "localhost"])


@pytest.fixture
def server():
    srv = AggregatorServer("127.0.0.1", 0, SECRET, max_executors=2, heartbeat_interval=0.2, timeout=1.0,
                           credentials=CERTS)
    yield srv
    srv.stop(0)


def connect(srv: AggregatorServer, secret: str = SECRET, credentials: JobCertificates | None = CERTS):
    return AggregatorConnection(f"127.0.0.1:{srv.port}", secret, pb.Hello(executor_id="executor-1"),
                                connect_timeout=1.0, credentials=credentials)


def assert_nobody_joined(srv: AggregatorServer) -> None:
    while True:
        try:
            assert srv.events.get_nowait().kind != JOINED
        except queue.Empty:
            return


def test_a_client_with_the_jobs_certificate_and_secret_joins(server):
    conn = connect(server)
    assert conn.welcome.executor_index == 0
    assert server.events.get(timeout=5).kind == JOINED
    conn.close()


def test_a_plaintext_client_cannot_join(server):
    with pytest.raises(AggregatorLost, match=r"^no aggregator answered at 127\.0\.0\.1:\d+ within 1 s \(last error"):
        connect(server, credentials=None)
    assert_nobody_joined(server)


def test_a_client_of_another_jobs_ca_cannot_join(server):
    with pytest.raises(AggregatorLost, match=r"over TLS within 1 s \(last error: .*Tls handshake failed"):
        connect(server, credentials=JobCertificates.create(["127.0.0.1"]))
    assert_nobody_joined(server)


def test_a_tls_client_without_a_client_certificate_cannot_join(server):
    credentials = grpc.ssl_channel_credentials(CERTS.ca_cert)
    with grpc.secure_channel(f"127.0.0.1:{server.port}", credentials,
                             options=GRPC_OPTIONS + [TARGET_NAME_OPTION]) as channel:
        call = pb_grpc.JobServiceStub(channel).Session(iter((pb.ExecutorMessage(hello=pb.Hello(executor_id="x")),)),
                                                       metadata=((commons.SECRET_METADATA_KEY, SECRET),), timeout=3)
        with pytest.raises(grpc.RpcError) as refused:
            next(call)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert_nobody_joined(server)


def test_the_right_certificate_with_the_wrong_secret_is_refused(server):
    with pytest.raises(Unauthenticated, match="refused the job secret"):
        connect(server, secret="not-the-secret")
    assert_nobody_joined(server)


def test_a_tls_client_cannot_join_a_plaintext_aggregator():
    srv = AggregatorServer("127.0.0.1", 0, SECRET, max_executors=1)
    try:
        with pytest.raises(AggregatorLost, match="over TLS within 1 s"):
            connect(srv)
    finally:
        srv.stop(0)


def test_the_certificates_travel_in_the_environment():
    env = CERTS.to_env()
    assert all(name.startswith("FEDSCALE_TLS_") and value.startswith("-----BEGIN") for name, value in env.items())
    assert JobCertificates.from_env({"PATH": "/bin", **env}) == CERTS
    assert JobCertificates.from_env({"PATH": "/bin"}) is None


def test_an_executors_environment_without_the_servers_key_connects_but_cannot_serve(server):
    executor_side = {k: v for k, v in CERTS.to_env().items() if k not in SERVER_ONLY}
    certs = JobCertificates.from_env(executor_side)
    assert certs.server_key == b"" and certs.client_key == CERTS.client_key
    with pytest.raises(ValueError, match=f"{SERVER_KEY_ENV} is not set"):
        certs.server_credentials()
    conn = connect(server, credentials=certs)
    assert server.events.get(timeout=5).kind == JOINED
    conn.close()


@pytest.mark.parametrize("name, value, message", [
    (CA_ENV, "not a certificate", f"{CA_ENV} does not hold a PEM certificate"),
    (CLIENT_KEY_ENV, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
     f"{CLIENT_KEY_ENV} does not hold an unencrypted PEM private key"),
    (CLIENT_KEY_ENV, JobCertificates.create([]).client_key.decode(),
     f"{CLIENT_KEY_ENV} is not the key of the certificate in {CLIENT_CERT_ENV}"),
    (SERVER_CERT_ENV, JobCertificates.create([]).server_cert.decode(),
     f"{SERVER_CERT_ENV} is not signed by the CA in {CA_ENV}"),
    (SERVER_CERT_ENV, "", f"{SERVER_CERT_ENV} is not set"),
])
def test_a_malformed_variable_is_a_one_line_error_naming_it(name, value, message):
    with pytest.raises(ValueError) as error:
        JobCertificates.from_env({**CERTS.to_env(), name: value})
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_the_server_certificate_names_every_host():
    from cryptography import x509
    names = x509.load_pem_x509_certificate(CERTS.server_cert).extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["fedscale-aggregator", "localhost"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]


def test_a_job_runs_over_tls_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("FEDSCALE_STATE_DIR", str(tmp_path / "state"))
    for name, value in JobCertificates.create(["127.0.0.1"]).to_env().items():
        monkeypatch.setenv(name, value)
    log = run_to_end(load_job(str(write_job(tmp_path, executors=2, rounds=2))))
    begin = log[0]
    assert begin["tag"] == commons.JOB_BEGIN and begin["tls"] is True
    check_documented(begin, documented_events())
    assert log[-1]["tag"] == commons.JOB_END and log[-1]["status"] == commons.STATUS_COMPLETED


def test_a_job_with_a_malformed_certificate_fails_naming_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("FEDSCALE_STATE_DIR", str(tmp_path / "state"))
    for name, value in dict(CERTS.to_env(), **{CA_ENV: "garbage"}).items():
        monkeypatch.setenv(name, value)
    with pytest.raises(RuntimeError, match=f"the job failed: {CA_ENV} does not hold a PEM certificate"):
        run_to_end(load_job(str(write_job(tmp_path, executors=1, rounds=1))))
