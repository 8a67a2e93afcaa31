"""Drives shiren's cloud ID-verification API (version 2019-03-07) with the official Python SDKs, unchanged except
for the endpoint: the Tea/Darabonba client `alibabacloud-cloudauth20190307` (default ACS3-HMAC-SHA256, or
HMAC-SHA1 with signature_algorithm="v2") and the legacy `aliyun-python-sdk-cloudauth` on `aliyun-python-sdk-core`.

Usage: cloud.py FLAVOUR CASE [CASE ...], FLAVOUR one of tea, tea-v2, legacy. Each case prints one JSON line:
  {"case": NAME, "flavour": FLAVOUR, "status": HTTP status, "code": Code, "body": the body or error data,
   "error": true when the SDK raised}
and the Rust test (tests/suite/cloud_sdk.rs) asserts on them. A case is one function in CASES; add one there.
Environment: SHIREN_CLOUD_ENDPOINT (127.0.0.1:PORT), SHIREN_CLOUD_KEY_ID, SHIREN_CLOUD_KEY_SECRET,
SHIREN_CLOUD_SCENE_ID.
Monkeypatching the SDK's clock or nonce source (stale_timestamp, replayed_nonce) changes no SDK code.
"""
import datetime
import json
import os
import sys

ENV = os.environ
ENDPOINT = ENV["SHIREN_CLOUD_ENDPOINT"]
KEY_ID = ENV["SHIREN_CLOUD_KEY_ID"]
KEY_SECRET = ENV["SHIREN_CLOUD_KEY_SECRET"]
SCENE_ID = int(ENV["SHIREN_CLOUD_SCENE_ID"])
UNKNOWN_SCENE_ID = 987654321


def stale_time():
    return (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=20)).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


# --- the Tea/Darabonba SDK ---------------------------------------------------------------------------------------

class Tea:
    def __init__(self, v2):
        from alibabacloud_cloudauth20190307 import models
        from alibabacloud_cloudauth20190307.client import Client
        from alibabacloud_tea_openapi import utils_models
        from alibabacloud_tea_openapi.utils import Utils
        self.models, self.Client, self.utils_models, self.Utils = models, Client, utils_models, Utils
        self.v2 = v2

    def client(self, key_id=KEY_ID, secret=KEY_SECRET):
        config = self.utils_models.Config(access_key_id=key_id, access_key_secret=secret, endpoint=ENDPOINT,
                                          protocol="http")
        if self.v2:
            config.signature_algorithm = "v2"
        return self.Client(config)

    def describe(self, client=None, scene_id=SCENE_ID, certify_id="sha0000000000000000000000000000"):
        req = self.models.DescribeFaceVerifyRequest(scene_id=scene_id, certify_id=certify_id)
        resp = (client or self.client()).describe_face_verify(req)
        body = resp.body.to_map()
        return {"status": resp.status_code, "code": body.get("Code"), "body": body}

    def raw_action(self, action, query):
        from alibabacloud_tea_openapi import utils_models
        from darabonba.runtime import RuntimeOptions
        params = utils_models.Params(action=action, version="2019-03-07", protocol="HTTPS", pathname="/",
                                     method="POST", auth_type="AK", style="RPC", req_body_type="formData",
                                     body_type="json")
        req = utils_models.OpenApiRequest(query=query)
        out = self.client().call_api(params, req, RuntimeOptions())
        body = out.get("body") or {}
        return {"status": out.get("statusCode"), "code": body.get("Code"), "body": body}

    def error(self, e):
        data = getattr(e, "data", None)
        status = getattr(e, "status_code", None)
        if status is None and isinstance(data, dict):
            status = data.get("statusCode")
        return {"status": status, "code": getattr(e, "code", None), "error": True,
                "exception": type(e).__name__, "message": str(getattr(e, "message", e)), "body": data}

    def patch_time(self, fn):
        self.Utils.get_timestamp = staticmethod(fn)

    def patch_nonce(self, fn):
        self.Utils.get_nonce = staticmethod(fn)


# --- the legacy core SDK -----------------------------------------------------------------------------------------

class Legacy:
    def __init__(self):
        import aliyunsdkcore.utils.parameter_helper as helper
        from aliyunsdkcloudauth.request.v20190307.DescribeFaceVerifyRequest import DescribeFaceVerifyRequest
        from aliyunsdkcore.client import AcsClient
        from aliyunsdkcore.request import CommonRequest
        self.helper, self.Describe, self.AcsClient, self.CommonRequest = (
            helper, DescribeFaceVerifyRequest, AcsClient, CommonRequest)
        # The legacy core takes the host from the request and the port from the client.
        self.host, port = ENDPOINT.rsplit(":", 1)
        self.port = int(port)

    def client(self, key_id=KEY_ID, secret=KEY_SECRET):
        return self.AcsClient(key_id, secret, "cn-shanghai", port=self.port)

    def send(self, client, req):
        req.set_endpoint(self.host)
        req.set_protocol_type("http")
        body = json.loads((client or self.client()).do_action_with_exception(req))
        return {"status": 200, "code": body.get("Code"), "body": body}

    def describe(self, client=None, scene_id=SCENE_ID, certify_id="sha0000000000000000000000000000"):
        req = self.Describe()
        req.set_SceneId(scene_id)
        req.set_CertifyId(certify_id)
        return self.send(client, req)

    def raw_action(self, action, query):
        req = self.CommonRequest()
        req.set_domain(self.host)
        req.set_version("2019-03-07")
        req.set_action_name(action)
        req.set_method("POST")
        for k, v in query.items():
            req.add_query_param(k, v)
        return self.send(None, req)

    def error(self, e):
        get = lambda name: getattr(e, name)() if hasattr(e, name) else None
        return {"status": get("get_http_status"), "code": get("get_error_code"), "error": True,
                "exception": type(e).__name__, "message": get("get_error_msg") or str(e)}

    def patch_time(self, fn):
        self.helper.get_iso_8061_date = fn

    def patch_nonce(self, fn):
        self.helper.get_uuid = fn


# --- the cases -----------------------------------------------------------------------------------------------------

def describe_known_scene(sdk):
    return sdk.describe()


def describe_unknown_scene(sdk):
    return sdk.describe(scene_id=UNKNOWN_SCENE_ID)


def wrong_secret(sdk):
    return sdk.describe(client=sdk.client(secret=KEY_SECRET[:-1] + ("A" if KEY_SECRET[-1] != "A" else "B")))


def unknown_key(sdk):
    return sdk.describe(client=sdk.client(key_id="SRAKnosuchkey0000000000"))


def stale_timestamp(sdk):
    sdk.patch_time(stale_time)
    return sdk.describe()


def replayed_nonce(sdk):
    nonce = "replay" + os.urandom(8).hex()
    sdk.patch_nonce(lambda: nonce)
    first = sdk.describe()
    if first.get("error"):
        return {"status": None, "code": "first call failed", "body": first}
    return sdk.describe()


def unknown_action(sdk):
    return sdk.raw_action("NoSuchAction", {"SceneId": str(SCENE_ID)})


def special_characters(sdk):
    """Values with spaces, '+', '*', '~' and CJK must sign identically on both sides."""
    return sdk.describe(certify_id="a b+c*d~e/实人")


CASES = {f.__name__: f for f in [describe_known_scene, describe_unknown_scene, wrong_secret, unknown_key,
                                  stale_timestamp, replayed_nonce, unknown_action, special_characters]}


def main():
    flavour, cases = sys.argv[1], sys.argv[2:] or list(CASES)
    for name in cases:
        # A fresh SDK object per case: patches made by one case do not leak into the next.
        for mod in [m for m in sys.modules if m.startswith(("alibabacloud", "aliyunsdk", "darabonba"))]:
            del sys.modules[mod]
        sdk = {"tea": lambda: Tea(False), "tea-v2": lambda: Tea(True), "legacy": Legacy}[flavour]()
        try:
            out = CASES[name](sdk)
        except Exception as e:  # the SDKs raise their own exception types
            out = sdk.error(e)
        out.update({"case": name, "flavour": flavour})
        print(json.dumps(out, ensure_ascii=False, default=str), flush=True)


if __name__ == "__main__":
    main()
