"""Drives shiren's Alipay-style gateway with the official Python SDK (alipay-sdk-python), unchanged.

Run by tests/suite/alipay_sdk.rs with the environment it describes; exits non-zero on the first broken expectation.
The SDK ignores ports, so the gateway listens on port 80 of a loopback address.
"""
import base64
import datetime as real_datetime
import http.server
import json
import os
import sys
import threading
import urllib.error
import urllib.request

import alipay.aop.api.DefaultAlipayClient as client_module
from alipay.aop.api.AlipayClientConfig import AlipayClientConfig
from alipay.aop.api.DefaultAlipayClient import DefaultAlipayClient
from alipay.aop.api.domain.AlipayUserCertifyOpenCertifyModel import AlipayUserCertifyOpenCertifyModel
from alipay.aop.api.domain.AlipayUserCertifyOpenInitializeModel import AlipayUserCertifyOpenInitializeModel
from alipay.aop.api.domain.AlipayUserCertifyOpenQueryModel import AlipayUserCertifyOpenQueryModel
from alipay.aop.api.domain.OpenCertifyIdentityParam import OpenCertifyIdentityParam
from alipay.aop.api.domain.OpenCertifyMerchantConfig import OpenCertifyMerchantConfig
from alipay.aop.api.exception.Exception import ResponseException
from alipay.aop.api.request.AlipayUserCertifyOpenCertifyRequest import AlipayUserCertifyOpenCertifyRequest
from alipay.aop.api.request.AlipayUserCertifyOpenInitializeRequest import AlipayUserCertifyOpenInitializeRequest
from alipay.aop.api.request.AlipayUserCertifyOpenQueryRequest import AlipayUserCertifyOpenQueryRequest
from alipay.aop.api.response.AlipayUserCertifyOpenInitializeResponse import AlipayUserCertifyOpenInitializeResponse
from alipay.aop.api.response.AlipayUserCertifyOpenQueryResponse import AlipayUserCertifyOpenQueryResponse

ENV = os.environ
GATEWAY = ENV["SHIREN_GATEWAY"]
RUN = ENV["SHIREN_RUN_ID"]
checks = 0


def check(cond, what, detail=""):
    global checks
    checks += 1
    if not cond:
        print(f"FAIL: {what} {detail}", flush=True)
        sys.exit(1)
    print(f"ok: {what}", flush=True)


def pem_body(path):
    return "".join(l for l in open(path).read().splitlines() if not l.startswith("-----"))


def client(app_id=None, key_file=None, url=GATEWAY):
    c = AlipayClientConfig()
    c.server_url = url
    c.app_id = app_id or ENV["SHIREN_APP_ID"]
    c.app_private_key = pem_body(key_file or ENV["SHIREN_APP_PRIVATE_KEY_FILE"])
    c.alipay_public_key = pem_body(ENV["SHIREN_GATEWAY_PUBLIC_KEY_FILE"])
    return DefaultAlipayClient(alipay_client_config=c)


def init_request(order, name=None, cert_no=None, picture=None):
    ident = OpenCertifyIdentityParam()
    ident.identity_type = "CERT_INFO"
    ident.cert_type = "IDENTITY_CARD"
    ident.cert_name = name or ENV["SHIREN_CERT_NAME"]
    ident.cert_no = cert_no or ENV["SHIREN_CERT_NO"]
    mc = OpenCertifyMerchantConfig()
    mc.return_url = ENV["SHIREN_RETURN_URL"]
    model = AlipayUserCertifyOpenInitializeModel()
    model.outer_order_no = order
    model.biz_code = "FACE"
    model.identity_param = ident
    model.merchant_config = mc
    if picture is not None:
        model.face_contrast_picture = picture
    req = AlipayUserCertifyOpenInitializeRequest()
    req.biz_model = model
    return req


def initialize(c, req):
    r = AlipayUserCertifyOpenInitializeResponse()
    r.parse_response_content(c.execute(req))
    return r


def query(c, certify_id):
    model = AlipayUserCertifyOpenQueryModel()
    model.certify_id = certify_id
    req = AlipayUserCertifyOpenQueryRequest()
    req.biz_model = model
    r = AlipayUserCertifyOpenQueryResponse()
    r.parse_response_content(c.execute(req))
    return r


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def open_no_redirect(url):
    opener = urllib.request.build_opener(NoRedirect)
    try:
        resp = opener.open(url)
        return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def main():
    c = client()
    order = f"py{RUN}"

    # initialize, then the same request again: the same certify_id.
    r1 = initialize(c, init_request(order))
    check(r1.is_success() and r1.code == "10000", "initialize succeeds", r1.body)
    check(len(r1.certify_id) == 32, "certify_id has 32 characters", r1.certify_id)
    r2 = initialize(c, init_request(order))
    check(r2.is_success() and r2.certify_id == r1.certify_id, "re-initialize is idempotent", r2.body)

    # A different request reusing the outer_order_no is refused.
    r3 = initialize(c, init_request(order, name="李四"))
    check(r3.code == "40004" and r3.sub_code == "OUTER_ORDER_NO_CONFLICT", "reused outer_order_no", r3.body)

    # query before any decision: not passed, no failure reason yet.
    q = query(c, r1.certify_id)
    check(q.is_success() and q.passed == "F", "query before decision is F", q.body)
    check(json.loads(q.identity_info) == {} and json.loads(q.material_info) == {}, "info fields are JSON strings")
    check(q.fail_reason is None, "no fail_reason before a decision", str(q.fail_reason))

    # query of an unknown certify_id.
    q = query(c, "0" * 32)
    check(q.code == "40004" and q.sub_code == "CERTIFY_ID_NOT_EXIST", "unknown certify_id", q.body)

    # certify: the page_execute GET URL, opened by a browser, redirects to the hosted page.
    model = AlipayUserCertifyOpenCertifyModel()
    model.certify_id = r1.certify_id
    req = AlipayUserCertifyOpenCertifyRequest()
    req.biz_model = model
    url = c.page_execute(req, http_method="GET")
    status, headers, _ = open_no_redirect(url)
    location = headers.get("Location", "")
    check(status == 302 and location.startswith(ENV["SHIREN_PUBLIC_URL"] + "/h5/certify/"), "certify redirects", f"{status} {location}")
    status, _, body = open_no_redirect(location)
    check(status == 200 and "实人认证" in body.decode(), "hosted page opens", str(status))

    # The POST form page_execute builds, submitted as a browser would.
    form_html = c.page_execute(req)
    check("<form" in form_html and "biz_content" in form_html, "page_execute POST form is built")

    # A face_contrast_picture (a real 48×48 grey JPEG: its header is checked) is accepted; a bad one is refused;
    # an oversized one too.
    jpeg = base64.b64decode(
        "/9j/4AAQSkZJRgABAgAAAQABAAD//gAQTGF2YzU5LjM3LjEwMAD/2wBDAAgUFBcUFxsbGxsbGyAeICEhISAgICAhISEkJCQqKiok"
        "JCQhISQkKCgqKi4vLisrKisvLzIyMjw8OTlGRkhWVmf/xABKAAEAAAAAAAAAAAAAAAAAAAAAAQEAAAAAAAAAAAAAAAAAAAAAEAEA"
        "AAAAAAAAAAAAAAAAAAAAEQEAAAAAAAAAAAAAAAAAAAAA/8AAEQgAMAAwAwEiAAIRAAMRAP/aAAwDAQACEQMRAD8AAAAAAAAAAAAA"
        "AAAAAA//2Q=="
    )
    r = initialize(c, init_request(f"pypic{RUN}", picture=base64.b64encode(jpeg).decode()))
    check(r.is_success(), "initialize with a contrast picture", r.body)
    r = initialize(c, init_request(f"pybad{RUN}", picture="bm90IGFuIGltYWdl"))
    check(r.code == "40004" and r.sub_code == "INVALID_PICTURE", "not an image", r.body)
    big = base64.b64encode(b"\xff\xd8\xff" + b"\x01" * (1024 * 1024 + 10)).decode()
    r = initialize(c, init_request(f"pybig{RUN}", picture=big))
    check(r.code == "40004" and r.sub_code == "PICTURE_TOO_LARGE", "oversized picture", r.body)
    huge = base64.b64encode(b"\xff\xd8\xff" + b"\x01" * (2 * 1024 * 1024)).decode()
    r = initialize(c, init_request(f"pyhuge{RUN}", picture=huge))
    check(r.code == "40002" and r.sub_code == "isv.invalid-parameter", "oversized request body", r.body)

    # An invalid ID number.
    bad_no = ENV["SHIREN_CERT_NO"][:17] + ("1" if ENV["SHIREN_CERT_NO"][17] == "0" else "0")
    r = initialize(c, init_request(f"pyid{RUN}", cert_no=bad_no))
    check(r.code == "40004" and r.sub_code == "INVALID_CERT_NO", "invalid ID number", r.body)

    # Malformed biz_content, sent as a raw string.
    req = AlipayUserCertifyOpenInitializeRequest()
    req.add_other_text_param("biz_content", '{"outer_order_no": "x", ')
    r = AlipayUserCertifyOpenInitializeResponse()
    r.parse_response_content(c.execute(req))
    check(r.code == "40004" and r.sub_code == "INVALID_PARAMETER", "malformed biz_content", r.body)

    # A wrong app key: the SDK verifies the signed error and sees isv.invalid-signature with the string-to-sign.
    r = initialize(client(key_file=ENV["SHIREN_WRONG_PRIVATE_KEY_FILE"]), init_request(f"pywk{RUN}"))
    check(r.code == "40002" and r.sub_code == "isv.invalid-signature", "wrong app key", r.body)
    check("app_id=" + ENV["SHIREN_APP_ID"] in r.sub_msg and "sign_type=RSA2" in r.sub_msg, "sub_msg has the string-to-sign", r.sub_msg)

    # An unknown app id.
    r = initialize(client(app_id="2099000000000000"), init_request(f"pyua{RUN}"))
    check(r.code == "40002" and r.sub_code == "isv.invalid-app-id", "unknown app id", r.body)

    # A bad timestamp: the SDK's clock is moved two days back (the SDK code is unchanged).
    class OldClock:
        class datetime:
            @staticmethod
            def now():
                return real_datetime.datetime.now() - real_datetime.timedelta(days=2)
    client_module.datetime = OldClock
    try:
        r = initialize(c, init_request(f"pyts{RUN}"))
    finally:
        client_module.datetime = real_datetime
    check(r.code == "40002" and r.sub_code == "isv.invalid-timestamp", "stale timestamp", r.body)

    # A response tampered with in transit is rejected by the SDK.
    tamper_host = ENV["SHIREN_TAMPER_HOST"]

    class Tamper(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            req = urllib.request.Request(GATEWAY + "?" + self.path.split("?", 1)[1], data=body,
                                         headers={"Content-Type": self.headers["Content-Type"]})
            data = urllib.request.urlopen(req).read().replace(b'"passed":"F"', b'"passed":"T"')
            self.send_response(200)
            self.send_header("Content-Type", "application/json;charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *a):
            pass

    srv = http.server.HTTPServer((tamper_host, 80), Tamper)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        tampered = client(url=f"http://{tamper_host}/gateway.do")
        try:
            query(tampered, r1.certify_id)
            check(False, "tampered response rejected", "the SDK accepted it")
        except ResponseException as e:
            check("sign verify failed" in str(e), "tampered response rejected", str(e)[:200])
    finally:
        srv.shutdown()

    print(f"python: {checks} passed, 0 failed")


if __name__ == "__main__":
    main()
