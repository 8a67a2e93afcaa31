// One hosted verification end to end, driven from the merchant's side by the official Node SDK (alipay-sdk):
// initialize → the certify URL (pageExec) → the hosted page in headless Chromium (tests/browser/h5.cjs) → query.
// Run by tests/suite/hosted_flow.rs with one JSON argument; prints progress on stderr and the result JSON as the last line.
//
// Input: { gateway, appId, appKeyFile, gatewayKeyFile, order, certName, certNo, returnUrl, reserve,
//          contrastPicture (file, optional), page: {runPage options; url is filled in} | null,
//          reopen: true to open the token URL again afterwards in a fresh browser (no session cookie), after
//          reopenDelayMs,
//          screenshots: dir }
// Output: { certifyId, tokenUrl, page, query, reopen: {status, code, text} }
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { AlipaySdk } = require('alipay-sdk');
const { runPage } = require('./h5.cjs');

async function visit(url, shot) {
  const { chromium } = require('playwright-core');
  const browser = await chromium.launch({
    executablePath: process.env.SHIREN_CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  try {
    const ctx = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    const page = await ctx.newPage();
    const resp = await page.goto(url);
    if (shot) await page.screenshot({ path: shot });
    const text = await page.innerText('body');
    const code = (text.match(/[A-Z][A-Z_]{5,}/g) || []).pop() || '';
    return { status: resp.status(), code, text };
  } finally {
    await browser.close();
  }
}

async function main() {
  const o = JSON.parse(process.argv[2]);
  const sdk = new AlipaySdk({
    appId: o.appId,
    privateKey: fs.readFileSync(o.appKeyFile, 'ascii'),
    alipayPublicKey: fs.readFileSync(o.gatewayKeyFile, 'ascii'),
    gateway: o.gateway,
  });
  const biz = {
    outerOrderNo: o.order,
    bizCode: 'FACE',
    identityParam: { identityType: 'CERT_INFO', certType: 'IDENTITY_CARD', certName: o.certName, certNo: o.certNo },
    merchantConfig: { returnUrl: o.returnUrl, faceReserveStrategy: o.reserve ? 'reserve' : 'never' },
  };
  if (o.contrastPicture) biz.faceContrastPicture = fs.readFileSync(o.contrastPicture).toString('base64');
  const init = await sdk.exec('alipay.user.certify.open.initialize', { bizContent: biz }, { validateSign: true });
  if (init.code !== '10000') throw new Error(`initialize failed: ${JSON.stringify(init)}`);
  const certifyId = init.certifyId;
  console.error(`[case] ${o.order}: certify_id ${certifyId}`);

  // The URL a merchant hands its front end; the gateway answers it with a redirect to the token URL.
  const url = sdk.pageExec('alipay.user.certify.open.certify', 'GET', { bizContent: { certifyId } });
  const r = await fetch(url, { redirect: 'manual' });
  const location = r.headers.get('location');
  if (r.status !== 302 || !location) throw new Error(`certify did not redirect: ${r.status}`);
  const tokenUrl = new URL(location, url).toString();

  const out = { certifyId, tokenUrl };
  if (o.page) {
    out.page = await runPage({ ...o.page, url: tokenUrl });
  }
  const q = await sdk.exec('alipay.user.certify.open.query', { bizContent: { certifyId } }, { validateSign: true });
  out.query = {
    code: q.code, passed: q.passed, failReason: q.failReason,
    identityInfo: q.identityInfo, materialInfo: q.materialInfo,
  };
  if (o.reopen) {
    if (o.reopenDelayMs) await new Promise((r) => setTimeout(r, o.reopenDelayMs));
    out.reopen = await visit(tokenUrl, o.screenshots && path.join(o.screenshots, 'reopened-token.png'));
  }
  console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.error(e && e.stack || e);
  process.exit(1);
});
