// Checks templates/h5/assets/miniprogram.js (the helper merchants copy into an Alipay mini-program) against a
// stand-in mini-program runtime: `my.navigateTo` opens the registered page (Page(options) simulated: onLoad with the
// query, setData, onMessage from the web-view, onUnload when it is left), `my.navigateBack` closes it.
// Then, unless --no-browser, the whole contract once in real Chromium: the helper's page gets the certify URL, the
// hosted page (served by mock_server.cjs) runs in the browser with a stand-in web-view bridge, and what the page posts
// is handed to the helper's onMessage; its navigateBack unloads the page; the promise must resolve with the result.
//
//   NODE_PATH=<sdk cache>/node/node_modules node tests/browser/miniprogram_helper.cjs [--no-browser] [--y4m FILE]
// Prints one line per check; exits 1 on the first failure.
'use strict';
const path = require('node:path');
const assert = require('node:assert/strict');

const HELPER = path.resolve(__dirname, '../../templates/h5/assets/miniprogram.js');
let checks = 0;
function ok(cond, what, detail) {
  checks += 1;
  if (!cond) {
    console.log(`FAIL: ${what}${detail === undefined ? '' : ' ' + JSON.stringify(detail)}`);
    process.exit(1);
  }
  console.log(`ok: ${what}`);
}

// ------------------------------------------------------------------------------------------- the stand-in runtime
function makeRuntime({ encodeQuery = true, failNavigate = false } = {}) {
  const pages = {};      // route -> options given to Page()
  const stack = [];      // live page instances
  const rt = {
    navigations: [],
    Page(options) { rt.pendingDefinition = options; },
    define(route, options) { pages[route] = options; },
    top() { return stack[stack.length - 1]; },
    my: {
      navigateTo({ url, success, fail }) {
        rt.navigations.push(url);
        setTimeout(() => {
          if (failNavigate) { if (fail) fail({ error: 4, errorMessage: 'page not found' }); return; }
          const [route, qs] = url.split('?');
          const def = pages[route];
          if (!def) { if (fail) fail({ error: 4, errorMessage: `no page ${route}` }); return; }
          // a page instance: the options' methods bound to an object with data and setData
          const inst = Object.create(def);
          inst.data = JSON.parse(JSON.stringify(def.data || {}));
          inst.setData = (patch) => Object.assign(inst.data, patch);
          inst.route = route;
          stack.push(inst);
          const query = {};
          for (const part of (qs || '').split('&').filter(Boolean)) {
            const i = part.indexOf('=');
            const k = part.slice(0, i);
            const v = part.slice(i + 1);
            // some runtimes hand the values over still encoded, some decoded: both are tested
            query[k] = encodeQuery ? v : decodeURIComponent(v);
          }
          if (inst.onLoad) inst.onLoad(query);
          if (success) success();
        }, 0);
      },
      navigateBack() {
        const inst = stack.pop();
        if (inst && inst.onUnload) inst.onUnload();
      },
    },
  };
  return rt;
}

function loadHelper(rt) {
  delete require.cache[HELPER];
  global.my = rt.my;
  global.Page = rt.Page;
  return require(HELPER);
}

const tick = () => new Promise((r) => setTimeout(r, 5));

async function simulated() {
  const before = new Set(Object.getOwnPropertyNames(globalThis));
  const rt = makeRuntime();
  const helper = loadHelper(rt);
  const added = Object.getOwnPropertyNames(globalThis).filter((k) => !before.has(k) && k !== 'my' && k !== 'Page');
  ok(added.length === 0, 'the helper adds no globals', added);
  ok(typeof helper.startCertify === 'function' && typeof helper.certifyPage === 'function', 'exports startCertify and certifyPage');
  ok(helper.DEFAULT_PAGE === '/pages/shiren-certify/index', 'default page /pages/shiren-certify/index');

  // the merchant's page file: Page(certifyPage())
  rt.Page(helper.certifyPage());
  rt.define('/pages/shiren-certify/index', rt.pendingDefinition);
  const url = 'https://verify.example.test/gateway.do?app_id=2021&method=alipay.user.certify.open.certify&biz_content=%7B%22certify_id%22%3A%22c1%22%7D&sign=a%2Bb%2F%3D';

  // 1. passed: the web-view posts 9000, then the page goes back
  let p = helper.startCertify({ url, certifyId: 'c1' });
  await tick();
  let page = rt.top();
  ok(page && page.data.src === url, 'onLoad sets src to the certify URL, exactly', page && page.data.src);
  ok(rt.navigations[0].startsWith('/pages/shiren-certify/index?'), 'navigates to the default page', rt.navigations[0]);
  page.onMessage({ detail: { resultStatus: '9000', result: { certifyId: 'c1', errorCode: '' } } });
  rt.my.navigateBack();
  let r = await p;
  assert.deepEqual(r, { resultStatus: '9000', result: { certifyId: 'c1', errorCode: '' } });
  ok(true, 'resolves with the posted {resultStatus: 9000, result}');

  // 2. left without a message: 6001
  p = helper.startCertify({ url, certifyId: 'c2' });
  await tick();
  rt.my.navigateBack();
  r = await p;
  ok(r.resultStatus === '6001' && r.result === null, 'unload without a message resolves {6001, null}', r);

  // 3. business error 4000, a numeric status normalised to a string, later messages ignored
  p = helper.startCertify({ url, certifyId: 'c3' });
  await tick();
  page = rt.top();
  page.onMessage({ detail: { resultStatus: 4000, result: { certifyId: 'c3', errorCode: 'MATCH_LOW' } } });
  page.onMessage({ detail: { resultStatus: '9000', result: { certifyId: 'c3', errorCode: '' } } });
  rt.my.navigateBack();
  r = await p;
  ok(r.resultStatus === '4000' && r.result.errorCode === 'MATCH_LOW', 'the first result wins; status is a string', r);

  // 4. network give-up 6002; a message without resultStatus is ignored
  p = helper.startCertify({ url, certifyId: 'c4' });
  await tick();
  page = rt.top();
  page.onMessage({ detail: { hello: 1 } });
  page.onMessage({});
  page.onMessage({ detail: { resultStatus: '6002', result: null } });
  rt.my.navigateBack();
  r = await p;
  ok(r.resultStatus === '6002' && r.result === null, 'unrelated messages ignored; 6002 passed through', r);

  // 5. two verifications in flight resolve independently
  const pa = helper.startCertify({ url: url + '&x=a', certifyId: 'a' });
  await tick();
  const pageA = rt.top();
  const pb = helper.startCertify({ url: url + '&x=b', certifyId: 'b' });
  await tick();
  const pageB = rt.top();
  ok(pageA.data.src.endsWith('&x=a') && pageB.data.src.endsWith('&x=b'), 'each page gets its own URL');
  pageB.onMessage({ detail: { resultStatus: '9000', result: { certifyId: 'b', errorCode: '' } } });
  rt.my.navigateBack();
  rt.my.navigateBack();
  const [ra, rb] = await Promise.all([pa, pb]);
  ok(ra.resultStatus === '6001' && rb.resultStatus === '9000', 'concurrent verifications do not mix', { ra, rb });

  // 6. a custom page path, and the merchant's own handlers still run
  const seen = [];
  rt.Page(helper.certifyPage({
    data: { title: 'KYC' },
    onLoad(q) { seen.push(['load', this.data.title, typeof q.url]); },
    onMessage(e) { seen.push(['message', e.detail.resultStatus]); },
    onUnload() { seen.push(['unload']); },
  }));
  rt.define('/pages/kyc/web', rt.pendingDefinition);
  p = helper.startCertify({ url, certifyId: 'c6', page: '/pages/kyc/web' });
  await tick();
  page = rt.top();
  ok(page.route === '/pages/kyc/web' && page.data.src === url && page.data.title === 'KYC', 'custom page path and own data kept');
  page.onMessage({ detail: { resultStatus: '9000', result: { certifyId: 'c6', errorCode: '' } } });
  rt.my.navigateBack();
  r = await p;
  ok(r.resultStatus === '9000', 'custom page resolves');
  assert.deepEqual(seen, [['load', 'KYC', 'string'], ['message', '9000'], ['unload']]);
  ok(true, "the merchant's own onLoad/onMessage/onUnload still run");

  // 7. bad input and a failed navigation reject
  await helper.startCertify({}).then(() => ok(false, 'no url rejects'), (e) => ok(e instanceof TypeError, 'no url rejects with a TypeError'));
  const rt2 = makeRuntime({ failNavigate: true });
  const helper2 = loadHelper(rt2);
  await helper2.startCertify({ url, certifyId: 'x' }).then(
    (v) => ok(false, 'a failed navigateTo rejects', v),
    (e) => ok(e && e.error === 4, 'a failed navigateTo rejects with its error', e));

  // 8. a runtime that hands over the query decoded
  const rt3 = makeRuntime({ encodeQuery: false });
  const helper3 = loadHelper(rt3);
  rt3.Page(helper3.certifyPage());
  rt3.define('/pages/shiren-certify/index', rt3.pendingDefinition);
  p = helper3.startCertify({ url, certifyId: 'c8' });
  await tick();
  ok(rt3.top().data.src === url, 'a decoded query gives the same src', rt3.top().data.src);
  rt3.my.navigateBack();
  await p;

  // 9. no runtime at all
  delete global.my;
  delete require.cache[HELPER];
  const bare = require(HELPER);
  await bare.startCertify({ url }).then(() => ok(false, 'without my it rejects'), (e) => ok(/navigateTo/.test(e.message), 'without the runtime it rejects clearly'));
}

// ------------------------------------------------------------------------------------------- the page, for real
async function inBrowser(y4m) {
  const { startMock } = require('./mock_server.cjs');
  const { runPage } = require('./h5.cjs');
  const mock = await startMock();
  try {
    for (const [token, opts, expect] of [
      ['fail-helper', { y4m }, (r) => r.resultStatus === '4000' && r.result.certifyId === 'cid-fail-helper' && r.result.errorCode === 'LIVENESS_MOUTH'],
      ['pass-helper', { y4m }, (r) => r.resultStatus === '9000' && r.result.certifyId === 'cid-pass-helper'],
      ['pass-helper-cancel', { cancel: true }, (r) => r.resultStatus === '6001' && r.result === null],
      ['neterr-helper', { giveUp: true }, (r) => r.resultStatus === '6002' && r.result === null],
    ]) {
      const rt = makeRuntime();
      const helper = loadHelper(rt);
      rt.Page(helper.certifyPage());
      rt.define('/pages/shiren-certify/index', rt.pendingDefinition);
      const certifyUrl = `${mock.url}/h5/certify/${token}?channel=miniprogram`;
      const p = helper.startCertify({ url: certifyUrl, certifyId: `cid-${token}` });
      await tick();
      const page = rt.top();
      const run = await runPage({ url: page.data.src, miniprogram: true, timeoutMs: 60000, ...opts });
      ok(run.hostNavigateBack === 1 && run.hostMessages.length === 1, `${token}: the page posted once and went back`, run.hostMessages);
      // what the web-view delivers to the mini-program page, in order
      for (const m of run.hostMessages) page.onMessage({ detail: m });
      rt.my.navigateBack();
      const r = await p;
      ok(expect(r), `${token}: startCertify resolves with the page's result`, r);
      ok(run.consoleErrors.filter((e) => !/ERR_EMPTY_RESPONSE|Failed to load resource/.test(e)).length === 0,
        `${token}: no script errors`, run.consoleErrors);
    }
  } finally {
    await mock.close();
  }
}

(async () => {
  await simulated();
  const args = process.argv.slice(2);
  if (!args.includes('--no-browser')) {
    const i = args.indexOf('--y4m');
    await inBrowser(i >= 0 ? args[i + 1] : undefined);
  }
  console.log(`all ${checks} checks passed`);
})().catch((e) => {
  console.log(`FAIL: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
