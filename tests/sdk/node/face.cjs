// Drives shiren's Alipay-style gateway with the official Node SDK (alipay-sdk), unchanged but for the gateway URL
// and the "Alipay public key". Run by tests/suite/alipay_sdk.rs; exits non-zero on the first broken expectation.
'use strict';
const fs = require('node:fs');
const http = require('node:http');
const { AlipaySdk } = require('alipay-sdk');

const env = process.env;
const RUN = env.SHIREN_RUN_ID;
let checks = 0;

function check(cond, what, detail) {
  checks += 1;
  if (!cond) {
    console.log(`FAIL: ${what} ${detail === undefined ? '' : JSON.stringify(detail)}`);
    process.exit(1);
  }
  console.log(`ok: ${what}`);
}

function sdk({ appId = env.SHIREN_APP_ID, keyFile = env.SHIREN_APP_PRIVATE_KEY_FILE, gateway = env.SHIREN_GATEWAY } = {}) {
  return new AlipaySdk({
    appId,
    privateKey: fs.readFileSync(keyFile, 'ascii'),
    alipayPublicKey: fs.readFileSync(env.SHIREN_GATEWAY_PUBLIC_KEY_FILE, 'ascii'),
    gateway,
  });
}

function initBiz(order, overrides = {}) {
  return {
    outerOrderNo: order,
    bizCode: 'FACE',
    identityParam: {
      identityType: 'CERT_INFO',
      certType: 'IDENTITY_CARD',
      certName: overrides.certName || env.SHIREN_CERT_NAME,
      certNo: overrides.certNo || env.SHIREN_CERT_NO,
    },
    merchantConfig: { returnUrl: overrides.returnUrl || env.SHIREN_RETURN_URL },
  };
}

async function main() {
  const alipay = sdk();
  const order = `node${RUN}`;
  const opts = { validateSign: true };

  const r1 = await alipay.exec('alipay.user.certify.open.initialize', { bizContent: initBiz(order) }, opts);
  check(r1.code === '10000' && r1.certifyId && r1.certifyId.length === 32, 'initialize succeeds', r1);
  check(typeof r1.traceId === 'string' && r1.traceId.length > 0, 'trace_id header is surfaced', r1);
  const r2 = await alipay.exec('alipay.user.certify.open.initialize', { bizContent: initBiz(order) }, opts);
  check(r2.code === '10000' && r2.certifyId === r1.certifyId, 're-initialize is idempotent', r2);
  const r3 = await alipay.exec('alipay.user.certify.open.initialize',
    { bizContent: initBiz(order, { certName: '王五' }) }, opts);
  check(r3.code === '40004' && r3.subCode === 'OUTER_ORDER_NO_CONFLICT', 'reused outer_order_no', r3);

  // A return_url outside the app's registered prefixes is refused (no open redirect).
  const r4 = await alipay.exec('alipay.user.certify.open.initialize',
    { bizContent: initBiz(`${order}r`, { returnUrl: 'https://evil.example/steal' }) }, opts);
  check(r4.code === '40004' && r4.subCode === 'RETURN_URL_NOT_ALLOWED', 'foreign return_url', r4);

  const q = await alipay.exec('alipay.user.certify.open.query', { bizContent: { certifyId: r1.certifyId } }, opts);
  check(q.code === '10000' && q.passed === 'F', 'query before decision is F', q);
  check(q.identityInfo === '{}' && q.materialInfo === '{}' && q.failReason === undefined, 'query fields', q);

  // certify: the pageExec GET URL, opened by a browser, redirects to the hosted page.
  const url = alipay.pageExec('alipay.user.certify.open.certify', 'GET', { bizContent: { certifyId: r1.certifyId } });
  const res = await fetch(url, { redirect: 'manual' });
  const location = res.headers.get('location') || '';
  check(res.status === 302 && location.startsWith(`${env.SHIREN_PUBLIC_URL}/h5/certify/`), 'certify redirects',
    { status: res.status, location });
  const page = await fetch(location);
  check(page.status === 200 && (await page.text()).includes('实人认证'), 'hosted page opens', page.status);

  // The same URL after the certify_id is unknown to this app: an HTML error page, not JSON.
  const badUrl = alipay.pageExec('alipay.user.certify.open.certify', 'GET', { bizContent: { certifyId: 'f'.repeat(32) } });
  const bad = await fetch(badUrl, { redirect: 'manual' });
  const badText = await bad.text();
  check(bad.status === 400 && badText.includes('CERTIFY_ID_NOT_EXIST'), 'certify of unknown id is an HTML error', bad.status);

  // A wrong app key: signed 40002 isv.invalid-signature, with the server's string-to-sign.
  const wrong = sdk({ keyFile: env.SHIREN_WRONG_PRIVATE_KEY_FILE });
  const w = await wrong.exec('alipay.user.certify.open.query', { bizContent: { certifyId: r1.certifyId } }, opts);
  check(w.code === '40002' && w.subCode === 'isv.invalid-signature', 'wrong app key', w);
  check(w.subMsg.includes('method=alipay.user.certify.open.query'), 'sub_msg has the string-to-sign', w.subMsg);

  const u = await sdk({ appId: '2099000000000001' }).exec('alipay.user.certify.open.query',
    { bizContent: { certifyId: r1.certifyId } }, opts);
  check(u.code === '40002' && u.subCode === 'isv.invalid-app-id', 'unknown app id', u);

  const bad18 = env.SHIREN_CERT_NO.slice(0, 17) + (env.SHIREN_CERT_NO[17] === '0' ? '1' : '0');
  const iv = await alipay.exec('alipay.user.certify.open.initialize',
    { bizContent: initBiz(`${order}id`, { certNo: bad18 }) }, opts);
  check(iv.code === '40004' && iv.subCode === 'INVALID_CERT_NO', 'invalid ID number', iv);

  // A response tampered with in transit is rejected by the SDK.
  const target = new URL(env.SHIREN_GATEWAY);
  const proxy = http.createServer((req, resp) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const up = http.request({ host: target.hostname, port: target.port || 80, path: req.url, method: req.method,
        headers: { 'content-type': req.headers['content-type'] || 'application/x-www-form-urlencoded' } }, (ur) => {
        const parts = [];
        ur.on('data', (c) => parts.push(c));
        ur.on('end', () => {
          const body = Buffer.concat(parts).toString('utf8').replace('"passed":"F"', '"passed":"T"');
          resp.writeHead(200, { 'content-type': 'application/json;charset=utf-8' });
          resp.end(body);
        });
      });
      up.end(Buffer.concat(chunks));
    });
  });
  await new Promise((ok) => proxy.listen(0, '127.0.0.1', ok));
  const tampered = sdk({ gateway: `http://127.0.0.1:${proxy.address().port}/gateway.do` });
  let rejected = false;
  try {
    await tampered.exec('alipay.user.certify.open.query', { bizContent: { certifyId: r1.certifyId } }, opts);
  } catch (e) {
    rejected = /验签失败/.test(e.message);
  }
  proxy.close();
  check(rejected, 'tampered response rejected');

  console.log(`node: ${checks} passed, 0 failed`);
}

main().catch((e) => {
  console.log(`FAIL: unexpected error ${e && e.stack}`);
  process.exit(1);
});
