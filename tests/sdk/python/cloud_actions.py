"""Calls shiren's cloud API actions with real pictures through the official Python SDKs, unchanged except for the
endpoint: the Tea/Darabonba client `alibabacloud-cloudauth20190307` (flavour "tea": ACS3-HMAC-SHA256, "tea-v2":
HMAC-SHA1) and the legacy `aliyun-python-sdk-cloudauth` (flavour "legacy").

Usage: cloud_actions.py CALLS_JSON_FILE, the file holding a list of
  {"name", "flavour", "action" (e.g. "ContrastFaceVerify"), "params": {PascalCase name: value},
   "files": {PascalCase name: path}  (read and sent as base64)}.
Prints one JSON line per call: {"name", "status", "code", "body"} or, when the SDK raised, {"name", "error": true,
"status", "code", "message"}. tests/suite/cloud_actions.rs asserts on them.
Environment: SHIREN_CLOUD_ENDPOINT (127.0.0.1:PORT), SHIREN_CLOUD_KEY_ID, SHIREN_CLOUD_KEY_SECRET.
"""
import base64
import json
import os
import re
import sys

ENV = os.environ
ENDPOINT = ENV["SHIREN_CLOUD_ENDPOINT"]
KEY_ID = ENV["SHIREN_CLOUD_KEY_ID"]
KEY_SECRET = ENV["SHIREN_CLOUD_KEY_SECRET"]


def snake(name):
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def tea_call(v2, action, params):
    from alibabacloud_cloudauth20190307 import models
    from alibabacloud_cloudauth20190307.client import Client
    from alibabacloud_tea_openapi import utils_models
    from darabonba.runtime import RuntimeOptions
    config = utils_models.Config(access_key_id=KEY_ID, access_key_secret=KEY_SECRET, endpoint=ENDPOINT,
                                 protocol="http")
    if v2:
        config.signature_algorithm = "v2"
    # Video and photo checks run on the server during the call: allow more than the SDK's default 10 s.
    runtime = RuntimeOptions(read_timeout=60000, connect_timeout=5000)
    req = getattr(models, action + "Request")().from_map(params)
    resp = getattr(Client(config), snake(action) + "_with_options")(req, runtime)
    body = resp.body.to_map()
    return {"status": resp.status_code, "code": body.get("Code"), "body": body}


def legacy_call(action, params):
    import importlib
    from aliyunsdkcore.client import AcsClient
    host, port = ENDPOINT.rsplit(":", 1)
    module = importlib.import_module("aliyunsdkcloudauth.request.v20190307.%sRequest" % action)
    req = getattr(module, action + "Request")()
    for k, v in params.items():
        getattr(req, "set_" + k)(v)
    req.set_endpoint(host)
    req.set_protocol_type("http")
    client = AcsClient(KEY_ID, KEY_SECRET, "cn-shanghai", auto_retry=False, port=int(port), timeout=60)
    body = json.loads(client.do_action_with_exception(req))
    return {"status": 200, "code": body.get("Code"), "body": body}


def error(e):
    get = lambda name: getattr(e, name)() if callable(getattr(e, name, None)) else getattr(e, name, None)
    status = getattr(e, "status_code", None) or get("get_http_status")
    code = getattr(e, "code", None) or get("get_error_code")
    message = getattr(e, "message", None) or get("get_error_msg") or str(e)
    return {"error": True, "status": status, "code": code, "message": str(message), "exception": type(e).__name__}


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        calls = json.load(f)
    for c in calls:
        params = dict(c.get("params") or {})
        for name, path in (c.get("files") or {}).items():
            with open(path, "rb") as f:
                params[name] = base64.b64encode(f.read()).decode("ascii")
        try:
            if c["flavour"] == "legacy":
                out = legacy_call(c["action"], params)
            else:
                out = tea_call(c["flavour"] == "tea-v2", c["action"], params)
        except Exception as e:  # the SDKs raise their own exception types
            out = error(e)
        out["name"] = c["name"]
        print(json.dumps(out, ensure_ascii=False, default=str), flush=True)


if __name__ == "__main__":
    main()
