"""The randomisation server over real HTTP on loopback (uvicorn), on SQLite and PostgreSQL.

Every endpoint × every role, bad requests, tokens, idempotency, the audit's principals.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from dbtools import run_sql
from serverkit import Server, call

from trialkit.service.custody import KeyDirectory, create_admin_token
from trialkit.service.store import connect

ROOT = Path(__file__).resolve().parent.parent
ADAPTIVE = ROOT / "designs" / "three-arm-adaptive.toml"
MRT = ROOT / "designs" / "checkin-prompts-mrt.toml"
ROLES = ["coordinator", "app", "statistician", "unblinder", "auditor", "admin"]


def blinded_design() -> str:
    text = ADAPTIVE.read_text().split("\n[randomisation]")[0]
    return (text.replace('name = "three_arm_adaptive"', 'name = "blind"') +
            '\n[randomisation]\nblinded = true\nblock_sizes = [3, 6]\n\n'
            '[randomisation.strata]\nsite = ["a", "b"]\n')


@pytest.fixture
def served(db_url, tmp_path):
    """Serve a blinded multi-arm trial and an MRT, with one token per role for each."""
    keys = tmp_path / "keys"
    KeyDirectory(str(keys), create=True)
    store = connect(db_url, create=True)
    try:
        admin = create_admin_token(store, KeyDirectory(str(keys)), "test")["token"]
    finally:
        store.close()
    with Server(db_url, keys) as server:
        url = server.url
        assert call(url, "POST", "/v1/trials", admin, {"design": blinded_design()})[0] == 201
        assert call(url, "POST", "/v1/trials", admin, {"design": MRT.read_text()})[0] == 201
        tokens = {}
        for trial in ("blind", "checkin_prompts_mrt"):
            for role in ROLES:
                status, out = call(url, "POST", f"/v1/trials/{trial}/tokens", admin,
                                   {"role": role})
                assert status == 201, out
                tokens[(trial, role)] = out["token"]
        status, out = call(url, "POST", "/v1/trials/blind/tokens", admin,
                           {"role": "coordinator", "sites": {"site": ["a"]}})
        tokens[("blind", "site_a")] = out["token"]
        yield {"url": url, "db": db_url, "admin": admin, "tokens": tokens, "server": server}


def one_line(body) -> str:
    assert isinstance(body, dict) and set(body) == {"error", "kind", "param"}, body
    assert "\n" not in body["error"] and " — " in body["error"], body
    return body["error"]


# (method, path, body, the roles that may)
ENDPOINTS = [
    ("POST", "/v1/trials/blind/participants", {"participant": "E1", "stratum": {"site": "a"}},
     {"coordinator"}),
    ("GET", "/v1/trials/blind/participants/S0", None, {"coordinator"}),
    ("POST", "/v1/trials/blind/mark-error", {"participant": "S1", "reason": "duplicate"},
     {"coordinator"}),
    ("POST", "/v1/trials/checkin_prompts_mrt/decisions",
     {"participant": "U1", "decision_point": 1, "available": True}, {"app"}),
    ("GET", "/v1/trials/blind/status", None, {"statistician"}),
    ("GET", "/v1/trials/blind/export?format=json", None, {"statistician"}),
    ("POST", "/v1/trials/blind/unblind", {"participant": "S0", "reason": "adverse event"},
     {"unblinder"}),
    ("GET", "/v1/trials/blind/verify", None, {"auditor"}),
    ("POST", "/v1/trials/blind/verify", {"receipts": []}, {"auditor"}),
    ("GET", "/v1/trials/blind/checkpoint", None, {"auditor"}),
    ("GET", "/v1/trials/blind/audit", None, {"auditor"}),
    ("GET", "/v1/trials/blind/tokens", None, {"admin"}),
    ("POST", "/v1/trials/blind/tokens", {"role": "app"}, {"admin"}),
    ("POST", "/v1/trials/blind/upgrade", None, {"admin"}),
    ("POST", "/v1/trials", {"design": "kind = 'x'"}, set()),  # server-wide admin only
]


def test_every_endpoint_for_every_role(served):
    url, tokens = served["url"], served["tokens"]
    for i in range(2):  # participants for the endpoints that need one
        status, out = call(url, "POST", "/v1/trials/blind/participants",
                           tokens[("blind", "coordinator")],
                           {"participant": f"S{i}", "stratum": {"site": "a"}})
        assert status == 200, out
    for method, path, body, allowed in ENDPOINTS:
        trial = "checkin_prompts_mrt" if "mrt" in path else "blind"
        for role in ROLES:
            status, out = call(url, method, path, tokens[(trial, role)], body)
            if role in allowed:
                assert status not in (401, 403), (method, path, role, status, out)
            else:
                assert status == 403, (method, path, role, status, out)
                assert "may not" in one_line(out) or "for trial" in one_line(out)
        status, out = call(url, method, path, None, body)
        assert status == 401 and "no access token" in one_line(out)
        status, out = call(url, method, path, "tk_nosuch_token", body)
        assert status == 401 and "unknown" in one_line(out)
    # the other trial's token is refused
    status, out = call(url, "GET", "/v1/trials/blind/status",
                       tokens[("checkin_prompts_mrt", "statistician")])
    assert status == 403 and "is for trial 'checkin_prompts_mrt'" in one_line(out)


def test_a_blinded_trial_stays_blinded_through_the_server(served):
    url, tokens = served["url"], served["tokens"]
    coord = tokens[("blind", "coordinator")]
    first = call(url, "POST", "/v1/trials/blind/participants", coord,
                 {"participant": "B1", "stratum": {"site": "a"}})[1]
    assert first["blinded"] is True and first["allocation"] not in (
        "usual_app", "core_package", "full_package")
    status = call(url, "GET", "/v1/trials/blind/status", tokens[("blind", "statistician")])[1]
    assert "groups" not in status and all(set(s) == {"stratum", "enrolled"}
                                          for s in status["strata"])
    export = call(url, "GET", "/v1/trials/blind/export?format=json",
                  tokens[("blind", "statistician")])[1]
    assert all("arm" not in r for r in export) and export[0]["code"] == first["allocation"]
    status, out = call(url, "POST", "/v1/trials/blind/unblind", tokens[("blind", "unblinder")],
                       {"participant": "B1", "reason": "serious adverse event"})
    assert status == 200 and out["allocation"] in ("usual_app", "core_package", "full_package")
    who = run_sql(served["db"], "SELECT who FROM audit WHERE trial = 'blind' AND action = "
                                "'unblind'")[0][0]
    assert who.startswith("token:") and who.endswith(":unblinder")


def test_site_limits_and_principals(served):
    url, tokens, db = served["url"], served["tokens"], served["db"]
    site_a = tokens[("blind", "site_a")]
    ok = call(url, "POST", "/v1/trials/blind/participants", site_a,
              {"participant": "A1", "stratum": {"site": "a"}})
    assert ok[0] == 200
    status, out = call(url, "POST", "/v1/trials/blind/participants", site_a,
                       {"participant": "B1", "stratum": {"site": "b"}})
    assert status == 403 and "site = a" in one_line(out)
    call(url, "POST", "/v1/trials/blind/participants", tokens[("blind", "coordinator")],
         {"participant": "B2", "stratum": {"site": "b"}})
    assert call(url, "GET", "/v1/trials/blind/participants/B2", site_a)[0] == 403
    assert call(url, "POST", "/v1/trials/blind/mark-error", site_a,
                {"participant": "B2", "reason": "x"})[0] == 403
    assert call(url, "GET", "/v1/trials/blind/participants/A1", site_a)[1]["new"] is False
    rows = run_sql(db, "SELECT who FROM audit WHERE trial = 'blind' AND action = 'enrol'")
    assert all(r[0].startswith("token:") and r[0].endswith(":coordinator") for r in rows)
    assert run_sql(db, "SELECT COUNT(*) FROM participants WHERE participant = 'B1'") == [(0,)]


def test_repeated_requests_return_the_original_result(served):
    url, tokens = served["url"], served["tokens"]
    body = {"participant": "R1", "stratum": {"site": "b"}}
    first = call(url, "POST", "/v1/trials/blind/participants", tokens[("blind", "coordinator")],
                 body)[1]
    again = call(url, "POST", "/v1/trials/blind/participants", tokens[("blind", "coordinator")],
                 body)[1]
    assert again["new"] is False and again["allocation"] == first["allocation"]
    assert again["receipt"] == first["receipt"]
    app = tokens[("checkin_prompts_mrt", "app")]
    batch = [{"participant": "U9", "decision_point": dp, "available": True} for dp in (1, 2, 3)]
    one = call(url, "POST", "/v1/trials/checkin_prompts_mrt/decisions", app, batch)[1]
    two = call(url, "POST", "/v1/trials/checkin_prompts_mrt/decisions", app, batch)[1]
    assert [d["action"] for d in one] == [d["action"] for d in two]
    assert [d["new"] for d in two] == [False] * 3


BAD = {
    "malformed_json": (None, b'{"participant": '),
    "unknown_field": ({"participant": "X1", "stratum": {"site": "a"}, "arm": "core"}, None),
    "wrong_type": ({"participant": ["X1"], "stratum": {"site": "a"}}, None),
    "non_finite": (None, b'{"participant": "U1", "decision_point": NaN, "available": true}'),
    "infinite": (None, b'{"participant": "U1", "decision_point": Infinity, "available": true}'),
    "bad_id": ({"participant": "X1\n", "stratum": {"site": "a"}}, None),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_requests_are_400_with_one_line_and_change_nothing(served, case):
    url, tokens, db = served["url"], served["tokens"], served["db"]
    body, raw = BAD[case]
    mrt = case in ("non_finite", "infinite")
    path = ("/v1/trials/checkin_prompts_mrt/decisions" if mrt
            else "/v1/trials/blind/participants")
    token = tokens[("checkin_prompts_mrt", "app")] if mrt else tokens[("blind", "coordinator")]
    before = run_sql(db, "SELECT COUNT(*) FROM audit")
    status, out = call(url, "POST", path, token, body, raw=raw)
    assert status == 400, out
    one_line(out)
    assert run_sql(db, "SELECT COUNT(*) FROM audit") == before


def test_a_body_over_the_limit_is_refused_before_it_is_read(served):
    import http.client
    from urllib.parse import urlsplit

    url, db = served["url"], served["db"]
    before = run_sql(db, "SELECT COUNT(*) FROM audit")
    parts = urlsplit(url)
    for chunked in (False, True):
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        conn.putrequest("POST", "/v1/trials/blind/participants")
        conn.putheader("Authorization", f"Bearer {served['tokens'][('blind', 'coordinator')]}")
        conn.putheader("Content-Type", "application/json")
        if chunked:  # no declared length: counted while it streams in
            conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            chunk = b"x" * (256 << 10)
            try:
                for _ in range(8):
                    conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                conn.send(b"0\r\n\r\n")
            except OSError:
                pass  # the server may answer and close before the rest is sent
        else:
            conn.putheader("Content-Length", str(2 << 20))
            conn.endheaders()
        response = conn.getresponse()
        status, out = response.status, json.loads(response.read())
        conn.close()
        assert status == 400 and "larger than" in one_line(out)
    assert run_sql(db, "SELECT COUNT(*) FROM audit") == before


def test_tokens_revocation_expiry_and_tampering(served):
    url, admin, db = served["url"], served["admin"], served["db"]
    status, made = call(url, "POST", "/v1/trials/blind/tokens", admin,
                        {"role": "statistician", "expires_days": 0.00003})
    assert status == 201 and made["expires_at"] is not None
    status, other = call(url, "POST", "/v1/trials/blind/tokens", admin, {"role": "statistician"})
    assert call(url, "GET", "/v1/trials/blind/status", other["token"])[0] == 200
    assert call(url, "DELETE", f"/v1/trials/blind/tokens/{other['id']}", admin)[0] == 200
    time.sleep(3.2)  # the token cache holds a checked token for at most 2 s; expiry was ~2.6 s
    status, out = call(url, "GET", "/v1/trials/blind/status", other["token"])
    assert status == 401 and "revoked" in one_line(out)
    status, out = call(url, "GET", "/v1/trials/blind/status", made["token"])
    assert status == 401 and "expired" in one_line(out)
    listed = call(url, "GET", "/v1/trials/blind/tokens", admin)[1]
    assert all("secret" not in json.dumps(t) for t in listed)
    assert not any(made["token"].split("_")[2] in json.dumps(r)
                   for r in run_sql(db, "SELECT * FROM tokens"))
    # a database writer widens a coordinator's role: the row is no longer authentic
    coord = served["tokens"][("blind", "coordinator")]
    run_sql(db, "UPDATE tokens SET role = 'unblinder' WHERE id = ?", (coord.split("_")[1],))
    time.sleep(2.2)
    status, out = call(url, "POST", "/v1/trials/blind/unblind", coord,
                       {"participant": "S0", "reason": "x"})
    assert status == 401 and "not authentic" in one_line(out)
    verified = call(url, "GET", "/v1/trials/blind/verify", served["tokens"][("blind", "auditor")])
    assert verified[1]["ok"] is False and "tokens table was edited" in verified[1]["problem"]


def test_the_openapi_schema_documents_the_api(served):
    status, schema = call(served["url"], "GET", "/openapi.json")
    assert status == 200
    for path in ("/v1/trials/{trial}/participants", "/v1/trials/{trial}/decisions",
                 "/v1/trials/{trial}/status", "/v1/trials/{trial}/export",
                 "/v1/trials/{trial}/unblind", "/v1/trials/{trial}/mark-error",
                 "/v1/trials/{trial}/verify", "/healthz"):
        assert path in schema["paths"], path
    enrol = schema["components"]["schemas"]["Enrolment"]
    assert enrol["additionalProperties"] is False and enrol["required"] == ["participant"]
    assert call(served["url"], "GET", "/v1/nowhere")[0] == 404
