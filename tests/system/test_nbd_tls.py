"""NBD over TLS (issue #20): QEMU's tls-creds-x509 and tls-creds-psk objects, with
certificates made by certtool as QEMU's docs/system/tls.rst shows.  Every pairing runs:
kestrel-img against qemu-nbd --tls-creds, qemu-img against kestrel-nbd --tls-creds, and
kestrel-img against kestrel-nbd; a wrong CA, a wrong key, or TLS on one side only ends
in a clear error on both programs, never a silent plain-text connection."""
import shutil
import subprocess

import pytest

from test_img_helpers import KIMG
from test_kestrel_nbd import KNBD, raw_image
from test_nbd import free_port, needs_libnbd, servers  # noqa: F401

pytestmark = [
    needs_libnbd,
    pytest.mark.skipif(not shutil.which("certtool") or not shutil.which("psktool"),
                       reason="certtool/psktool (gnutls-bin) are needed"),
    pytest.mark.skipif(not KNBD.exists(), reason=f"{KNBD} is not built"),
]


def certtool(*args):
    subprocess.run(["certtool", *map(str, args)], check=True, capture_output=True)


def make_ca(d):
    d.mkdir()
    (d / "ca.info").write_text("cn = Kestrel test CA\nca\ncert_signing_key\n")
    certtool("--generate-privkey", "--key-type=ecdsa", "--outfile", d / "ca-key.pem")
    certtool("--generate-self-signed", "--load-privkey", d / "ca-key.pem",
             "--template", d / "ca.info", "--outfile", d / "ca-cert.pem")
    return d


def issue(ca, d, role, template):
    """A key and certificate signed by ca, in d with QEMU's names, plus ca-cert.pem."""
    d.mkdir()
    (d / "info").write_text(template)
    key, cert = d / f"{role}-key.pem", d / f"{role}-cert.pem"
    certtool("--generate-privkey", "--key-type=ecdsa", "--outfile", key)
    certtool("--generate-certificate", "--load-ca-certificate", ca / "ca-cert.pem",
             "--load-ca-privkey", ca / "ca-key.pem", "--load-privkey", key,
             "--template", d / "info", "--outfile", cert)
    shutil.copy(ca / "ca-cert.pem", d / "ca-cert.pem")
    return d


SERVER = ("organization = Kestrel\ncn = localhost\ndns_name = localhost\n"
          "ip_address = 127.0.0.1\ntls_www_server\nencryption_key\nsigning_key\n")
CLIENT = "organization = Kestrel\ncn = client.localhost\ntls_www_client\nencryption_key\nsigning_key\n"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    t = tmp_path_factory.mktemp("pki")
    ca, other = make_ca(t / "ca"), make_ca(t / "other-ca")
    dirs = {"server": issue(ca, t / "server", "server", SERVER),
            "client": issue(ca, t / "client", "client", CLIENT),
            # A client that trusts another CA (and holds a certificate of it).
            "wrong-ca": issue(other, t / "wrong-ca", "client", CLIENT),
            # A server whose certificate another CA signed.
            "rogue-server": issue(other, t / "rogue-server", "server", SERVER),
            # A server of the right CA whose certificate names another host.
            "elsewhere": issue(ca, t / "elsewhere", "server",
                               SERVER.replace("localhost", "elsewhere.example")
                               .replace("ip_address = 127.0.0.1\n", ""))}
    for name in ("psk", "psk-other"):
        (t / name).mkdir()
        subprocess.run(["psktool", "-u", "alice", "-p", t / name / "keys.psk"], check=True,
                       capture_output=True)
    dirs["psk"], dirs["psk-other"] = t / "psk", t / "psk-other"
    return dirs


def x509(d, endpoint, oid="tls0"):
    return f"tls-creds-x509,id={oid},endpoint={endpoint},dir={d}"


def psk(d, endpoint, oid="tls0"):
    user = ",username=alice" if endpoint == "client" else ""
    return f"tls-creds-psk,id={oid},endpoint={endpoint},dir={d}{user}"


def tcp_server(servers, prog, image, obj, tls=True):
    port = free_port()
    argv = [prog, "-f", "raw", "-t", "-b", "127.0.0.1", "-p", str(port)]
    if obj:
        argv += ["--object", obj]
    if tls:
        argv += ["--tls-creds", "tls0"]
    servers([*argv, str(image)], port)
    return port


def opts(port, creds=True, host="127.0.0.1"):
    o = f"driver=nbd,server.type=inet,server.host={host},server.port={port}"
    return o + (",tls-creds=tls0" if creds else "")


def run(prog, *args):
    return subprocess.run([str(prog), *map(str, args)], capture_output=True, text=True,
                          timeout=60)


def client_info(prog, obj, port, creds=True):
    return run(prog, "info", *(["--object", obj] if obj else []), "--image-opts",
               opts(port, creds))


@pytest.mark.parametrize("server_prog,client_prog", [
    ("qemu-nbd", KIMG), (KNBD, "qemu-img"), (KNBD, KIMG)],
    ids=["kestrel-img-to-qemu-nbd", "qemu-img-to-kestrel-nbd", "kestrel-to-kestrel"])
@pytest.mark.parametrize("kind", ["x509", "psk"])
def test_tls_sessions_read_and_write_between_kestrel_and_qemu(servers, tmp_path, pki,
                                                             server_prog, client_prog, kind):
    image = raw_image(tmp_path / "d.raw")
    mk = x509 if kind == "x509" else psk
    port = tcp_server(servers, server_prog, image, mk(pki["server" if kind == "x509" else "psk"],
                                                      "server"))
    cobj = mk(pki["client" if kind == "x509" else "psk"], "client")
    p = client_info(client_prog, cobj, port)
    assert p.returncode == 0 and "16 MiB" in p.stdout, p.stderr
    # A write through TLS lands in the image; a read through TLS sees the image's bytes.
    src = tmp_path / "src.raw"
    subprocess.run(["qemu-img", "create", "-q", "-f", "raw", src, "16M"], check=True)
    subprocess.run(["qemu-io", "-f", "raw", "-c", "write -P 0x3c 2M 1M", src], check=True,
                   capture_output=True)
    p = run(client_prog, "convert", "-n", "--object", cobj, "-f", "raw", src,
            "--target-image-opts", opts(port))
    assert p.returncode == 0, p.stderr
    subprocess.run(["qemu-img", "compare", "-f", "raw", "-F", "raw", src, image], check=True)
    out = tmp_path / "out.raw"
    p = run(client_prog, "convert", "--object", cobj, "-O", "raw", "--image-opts", opts(port),
            out)
    assert p.returncode == 0, p.stderr
    subprocess.run(["qemu-img", "compare", "-f", "raw", "-F", "raw", src, out], check=True)


def test_a_client_without_tls_is_told_the_server_wants_it(servers, tmp_path, pki):
    port = tcp_server(servers, KNBD, raw_image(tmp_path / "d.raw"), x509(pki["server"], "server"))
    for prog in (KIMG, "qemu-img"):
        p = run(prog, "info", f"nbd://127.0.0.1:{port}")
        assert p.returncode == 1 and "Did you forget a valid tls-creds?" in p.stderr, p.stderr
    p = client_info(KIMG, None, port, creds=False)
    assert "requires TLS" in p.stderr


def test_a_tls_client_refuses_a_plain_server(servers, tmp_path, pki):
    for prog in ("qemu-nbd", KNBD):
        port = tcp_server(servers, prog, raw_image(tmp_path / f"{free_port()}.raw"), None,
                          tls=False)
        for client in (KIMG, "qemu-img"):
            p = client_info(client, x509(pki["client"], "client"), port)
            assert p.returncode == 1 and "16 MiB" not in p.stdout, (prog, client, p.stdout)
        assert "Failed to negotiate" in client_info(KIMG, x509(pki["client"], "client"),
                                                    port).stderr


@pytest.mark.parametrize("server_prog", ["qemu-nbd", KNBD], ids=["qemu-nbd", "kestrel-nbd"])
def test_a_server_of_another_ca_is_refused(servers, tmp_path, pki, server_prog):
    port = tcp_server(servers, server_prog, raw_image(tmp_path / "d.raw"),
                      x509(pki["rogue-server"], "server"))
    p = client_info(KIMG, x509(pki["client"], "client"), port)
    assert p.returncode == 1 and "certificate" in p.stderr, p.stderr
    assert "not signed by the CA" in p.stderr
    assert run("qemu-img", "info", "--object", x509(pki["client"], "client"), "--image-opts",
               opts(port)).returncode == 1


def test_kestrel_nbd_refuses_clients_of_another_ca_and_wrong_psk_keys(servers, tmp_path, pki):
    port = tcp_server(servers, KNBD, raw_image(tmp_path / "d.raw"), x509(pki["server"], "server"))
    # The client's CA does not know the server, and its certificate is not the server's CA's.
    for prog in (KIMG, "qemu-img"):
        p = run(prog, "info", "--object",
                x509(pki["wrong-ca"], "client") + ",verify-peer=off", "--image-opts", opts(port))
        assert p.returncode == 1 and "16 MiB" not in p.stdout, p.stdout
    # Same CA, the server still serves.
    assert client_info(KIMG, x509(pki["client"], "client"), port).returncode == 0
    port = tcp_server(servers, KNBD, raw_image(tmp_path / "e.raw"), psk(pki["psk"], "server"))
    for prog in (KIMG, "qemu-img"):
        p = client_info(prog, psk(pki["psk-other"], "client"), port)
        assert p.returncode == 1 and "16 MiB" not in p.stdout, p.stdout
    assert client_info(KIMG, psk(pki["psk"], "client"), port).returncode == 0


def test_the_host_name_is_checked_against_the_certificate(servers, tmp_path, pki):
    """A certificate of the right CA that names elsewhere.example, not 127.0.0.1."""
    port = tcp_server(servers, KNBD, raw_image(tmp_path / "d.raw"),
                      x509(pki["elsewhere"], "server"))
    p = client_info(KIMG, x509(pki["client"], "client"), port)
    assert p.returncode == 1 and "does not name the server" in p.stderr, p.stderr
    assert client_info("qemu-img", x509(pki["client"], "client"), port).returncode == 1


def test_unix_socket_x509_wants_a_host_name_as_qemu(servers, tmp_path, pki):
    sock = tmp_path / "x.sock"
    servers([str(KNBD), "-t", "--object", x509(pki["server"], "server"), "--tls-creds", "tls0",
             "-k", str(sock), str(raw_image(tmp_path / "d.raw"))], sock)
    o = f"driver=nbd,server.type=unix,server.path={sock},tls-creds=tls0"
    for prog in (KIMG, "qemu-img"):
        p = run(prog, "info", "--object", x509(pki["client"], "client"), "--image-opts", o)
        assert p.returncode == 1 and "No hostname for certificate validation" in p.stderr
    # PSK needs no host name: the same socket with a PSK server serves.
    sock2 = tmp_path / "p.sock"
    servers([str(KNBD), "-t", "--object", psk(pki["psk"], "server"), "--tls-creds", "tls0",
             "-k", str(sock2), str(raw_image(tmp_path / "e.raw"))], sock2)
    o = f"driver=nbd,server.type=unix,server.path={sock2},tls-creds=tls0"
    for prog in (KIMG, "qemu-img"):
        p = run(prog, "info", "--object", psk(pki["psk"], "client"), "--image-opts", o)
        assert p.returncode == 0 and "16 MiB" in p.stdout, p.stderr


@pytest.mark.parametrize("obj,msg", [
    ("tls-creds-x509,id=t,endpoint=client,dir=/nonexistent",
     "Unable to access credentials /nonexistent/ca-cert.pem: No such file or directory"),
    ("tls-creds-psk,id=t,endpoint=client,dir=/nonexistent",
     "Unable to access credentials /nonexistent/keys.psk"),
    ("tls-creds-x509,id=t,endpoint=middle,dir=/tmp", "Parameter 'endpoint' does not accept"),
    ("tls-creds-x509,id=t,dir=/tmp,priority=NORMAL", "Option 'priority' of object"),
    ("tls-creds-x509,id=t,dir=/tmp,bogus=1", "Property 'tls-creds-x509.bogus' not found"),
])
def test_bad_tls_objects_are_refused(obj, msg):
    p = run(KIMG, "info", "--object", obj, "null-co://")
    assert p.returncode == 1 and msg in p.stderr, p.stderr
    q = run("qemu-img", "info", "--object", obj, "null-co://")
    assert q.returncode == 1


def test_credentials_of_the_wrong_side_or_id(tmp_path, pki):
    o = "driver=nbd,server.type=inet,server.host=127.0.0.1,server.port=1,tls-creds="
    for prog in (KIMG, "qemu-img"):
        p = run(prog, "info", "--object", x509(pki["server"], "server"), "--image-opts",
                o + "tls0")
        assert "Expected TLS credentials for a client endpoint" in p.stderr, p.stderr
        p = run(prog, "info", "--image-opts", o + "nope")
        assert "No TLS credentials with id 'nope'" in p.stderr, p.stderr
    image = raw_image(tmp_path / "d.raw")
    p = run(KNBD, "--object", x509(pki["client"], "client"), "--tls-creds", "tls0",
            "-k", tmp_path / "k.sock", image)
    assert p.returncode == 1 and "Expected TLS credentials for a server endpoint" in p.stderr
