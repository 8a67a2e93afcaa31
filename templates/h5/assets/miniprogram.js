/*
 * shiren mini-program helper: run a shiren verification inside an Alipay mini-program and get its client result.
 * (Served by shiren at /h5/assets/miniprogram.js: copy it into your mini-program, e.g. as utils/shiren.js.)
 *
 * 1. Create a page for the hosted verification, e.g. pages/shiren-certify/index, and list it in app.json:
 *
 *      // pages/shiren-certify/index.js
 *      const { certifyPage } = require('../../utils/shiren.js');
 *      Page(certifyPage());
 *
 *      <!-- pages/shiren-certify/index.axml -->
 *      <web-view src="{{src}}" onMessage="onMessage"/>
 *
 *    Add shiren's host to the mini-program's web-view business domains (业务域名) in the Alipay console.
 *    certifyPage(extra) accepts your own page options too; its onLoad/onMessage/onUnload run after the helper's.
 *
 * 2. Start a verification from any page, with the certify URL and certify_id your server got from shiren
 *    (alipay.user.certify.open.initialize, then the certify URL signed with pageExecute in GET mode):
 *
 *      const { startCertify } = require('../../utils/shiren.js');
 *      const res = await startCertify({ url: certifyUrl, certifyId });
 *      // optional: page = '/pages/shiren-certify/index' (the default)
 *
 *    The promise resolves with the result the hosted page posts, in the shape of my.startAPVerify's callback:
 *      { resultStatus: '9000', result: { certifyId, errorCode } }   the flow finished (passed or not: see below)
 *      { resultStatus: '4000', result: { certifyId, errorCode } }   a business error; errorCode says which
 *      { resultStatus: '6001', result: null }                       the person cancelled or left the page
 *      { resultStatus: '6002', result: null }                       a network error, and the person gave up
 *    It rejects only when the page cannot be opened (my.navigateTo failed), with that error.
 *
 * 3. Then ask your server to call alipay.user.certify.open.query for the certifyId. The client result is a hint for
 *    the interface only: it comes from the person's device and can be forged. Only the server-side query is the
 *    verdict (passed "T"/"F", fail_reason).
 *
 * CommonJS, no globals of its own; uses the mini-program's `my` and `Page` as provided by the runtime.
 */
'use strict';

var DEFAULT_PAGE = '/pages/shiren-certify/index';
var pending = {};   // request id -> { resolve }
var seq = 0;

function runtime() {
  if (typeof my === 'undefined' || !my || typeof my.navigateTo !== 'function') {
    throw new Error('shiren miniprogram helper: the mini-program runtime (my.navigateTo) is not available');
  }
  return my;
}

function settle(id, value) {
  var p = id && pending[id];
  if (!p) return false;
  delete pending[id];
  p.resolve(value);
  return true;
}

function normalise(msg) {
  if (!msg || typeof msg !== 'object' || msg.resultStatus === undefined || msg.resultStatus === null) return null;
  var status = String(msg.resultStatus);
  var result = msg.result && typeof msg.result === 'object'
    ? { certifyId: msg.result.certifyId, errorCode: msg.result.errorCode }
    : null;
  return { resultStatus: status, result: result };
}

/**
 * Opens the hosted verification in the web-view page and resolves with {resultStatus, result}.
 * @param {{url: string, certifyId?: string, page?: string}} options
 */
function startCertify(options) {
  var o = options || {};
  var page = o.page || DEFAULT_PAGE;
  return new Promise(function (resolve, reject) {
    if (!o.url || typeof o.url !== 'string') { reject(new TypeError('startCertify: url is required')); return; }
    var host;
    try { host = runtime(); } catch (e) { reject(e); return; }
    seq += 1;
    var id = 'c' + seq + '_' + Date.now().toString(36);
    pending[id] = { resolve: resolve, certifyId: o.certifyId || '' };
    host.navigateTo({
      url: page + (page.indexOf('?') < 0 ? '?' : '&') + 'shirenId=' + encodeURIComponent(id) +
        '&url=' + encodeURIComponent(o.url),
      fail: function (err) {
        if (pending[id]) { delete pending[id]; reject(err || new Error('my.navigateTo failed')); }
      }
    });
  });
}

function decodeParam(v) {
  if (typeof v !== 'string') return '';
  // the runtime may hand the query over encoded or already decoded
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(v)) return v;
  try { return decodeURIComponent(v); } catch (e) { return v; }
}

/**
 * The options of the web-view page: Page(certifyPage()) or Page(certifyPage({ ...your own options })).
 */
function certifyPage(extra) {
  var own = extra || {};
  var opts = {};
  var k;
  for (k in own) if (Object.prototype.hasOwnProperty.call(own, k)) opts[k] = own[k];
  var data = {};
  if (own.data) for (k in own.data) if (Object.prototype.hasOwnProperty.call(own.data, k)) data[k] = own.data[k];
  data.src = '';
  opts.data = data;

  opts.onLoad = function (query) {
    var q = query || {};
    this.shirenId = decodeParam(q.shirenId);
    this.setData({ src: decodeParam(q.url) });
    if (typeof own.onLoad === 'function') own.onLoad.call(this, query);
  };
  opts.onMessage = function (e) {
    var r = normalise(e && e.detail);
    if (r) settle(this.shirenId, r);
    if (typeof own.onMessage === 'function') own.onMessage.call(this, e);
  };
  opts.onUnload = function () {
    // left without a result (the back button, or the page closed): cancelled
    settle(this.shirenId, { resultStatus: '6001', result: null });
    if (typeof own.onUnload === 'function') own.onUnload.call(this);
  };
  return opts;
}

if (typeof module !== 'undefined' && module.exports) {
  module.exports = { startCertify: startCertify, certifyPage: certifyPage, DEFAULT_PAGE: DEFAULT_PAGE };
}
