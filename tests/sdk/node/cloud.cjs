// Drives shiren's cloud ID-verification API (version 2019-03-07) with the official Node SDK
// @alicloud/cloudauth20190307, unchanged except for the endpoint (ACS3-HMAC-SHA256; it sends chunked bodies).
//
// Usage: node cloud.cjs CASE [CASE ...]. Each case prints one JSON line
//   {"case", "flavour": "node", "status", "code", "body", "error": true when the SDK threw}
// that tests/suite/cloud_sdk.rs asserts on. A case is one async function in CASES; add one there.
// Environment: SHIREN_CLOUD_ENDPOINT (127.0.0.1:PORT), SHIREN_CLOUD_KEY_ID, SHIREN_CLOUD_KEY_SECRET,
// SHIREN_CLOUD_SCENE_ID. Replacing the SDK's clock or nonce function (stale_timestamp, replayed_nonce) changes no
// SDK code.
'use strict';
const crypto = require('node:crypto');
const Cloudauth = require('@alicloud/cloudauth20190307');
const { $OpenApiUtil } = require('@alicloud/openapi-core');

const env = process.env;
const ENDPOINT = env.SHIREN_CLOUD_ENDPOINT;
const KEY_ID = env.SHIREN_CLOUD_KEY_ID;
const KEY_SECRET = env.SHIREN_CLOUD_KEY_SECRET;
const SCENE_ID = Number(env.SHIREN_CLOUD_SCENE_ID);
const UNKNOWN_SCENE_ID = 987654321;
const Utils = $OpenApiUtil.default;
const original = { getNonce: Utils.getNonce, getTimestamp: Utils.getTimestamp };

function client(keyId = KEY_ID, secret = KEY_SECRET) {
  const config = new $OpenApiUtil.Config({
    accessKeyId: keyId,
    accessKeySecret: secret,
    endpoint: ENDPOINT,
    protocol: 'http',
  });
  return new Cloudauth.default(config);
}

async function describe({ c = client(), sceneId = SCENE_ID, certifyId = 'sha0000000000000000000000000000' } = {}) {
  const req = new Cloudauth.DescribeFaceVerifyRequest({ sceneId, certifyId });
  const resp = await c.describeFaceVerify(req);
  return { status: resp.statusCode, code: resp.body.code, body: resp.body.toMap() };
}

function error(e) {
  return {
    status: e.statusCode ?? (e.data && e.data.statusCode),
    code: e.code,
    error: true,
    exception: e.name,
    message: String(e.message),
    body: e.data,
  };
}

const CASES = {
  async describe_known_scene() {
    return describe();
  },
  async describe_unknown_scene() {
    return describe({ sceneId: UNKNOWN_SCENE_ID });
  },
  async wrong_secret() {
    const last = KEY_SECRET.slice(-1) === 'A' ? 'B' : 'A';
    return describe({ c: client(KEY_ID, KEY_SECRET.slice(0, -1) + last) });
  },
  async unknown_key() {
    return describe({ c: client('SRAKnosuchkey0000000000') });
  },
  async stale_timestamp() {
    Utils.getTimestamp = () => new Date(Date.now() - 20 * 60 * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
    return describe();
  },
  async replayed_nonce() {
    const nonce = 'replay' + crypto.randomBytes(8).toString('hex');
    Utils.getNonce = () => nonce;
    const first = await describe();
    if (first.error) return { status: null, code: 'first call failed', body: first };
    return describe();
  },
  async unknown_action() {
    const params = new $OpenApiUtil.Params({
      action: 'NoSuchAction', version: '2019-03-07', protocol: 'HTTPS', pathname: '/', method: 'POST',
      authType: 'AK', style: 'RPC', reqBodyType: 'formData', bodyType: 'json',
    });
    const req = new $OpenApiUtil.OpenApiRequest({ query: { SceneId: String(SCENE_ID) } });
    const { RuntimeOptions } = require('@darabonba/typescript');
    const out = await client().callApi(params, req, new RuntimeOptions({}));
    return { status: out.statusCode, code: out.body && out.body.Code, body: out.body };
  },
  async special_characters() {
    return describe({ certifyId: 'a b+c*d~e/实人' });
  },
};

async function main() {
  const names = process.argv.slice(2);
  for (const name of names.length ? names : Object.keys(CASES)) {
    Utils.getNonce = original.getNonce;
    Utils.getTimestamp = original.getTimestamp;
    let out;
    try {
      out = await CASES[name]();
    } catch (e) {
      out = error(e);
    }
    console.log(JSON.stringify({ ...out, case: name, flavour: 'node' }));
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
