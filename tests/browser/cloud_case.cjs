// One hosted verification of a cloud-API product (ID_PRO, PV_FV, LR_FR) end to end, driven from the merchant's side
// by the official Node SDK @alicloud/cloudauth20190307 (unchanged except for the endpoint):
// InitFaceVerify → CertifyUrl → the hosted page in headless Chromium (tests/browser/h5.cjs) → DescribeFaceVerify.
// Run by tests/suite/cloud_hosted.rs with one JSON argument; progress on stderr, the result JSON as the last stdout line.
//
// Input: { endpoint, keyId, keySecret, sceneId, productCode, order, certName?, certNo?, returnUrl?,
//          contrastPicture (file, optional), callbackUrl?, callbackToken?, page: {runPage options} | null }
// Output: { init: {code, message, certifyId, certifyUrl}, page, describe: {code, message, passed, subCode,
//           materialInfo} }
'use strict';
const fs = require('node:fs');
const Cloudauth = require('@alicloud/cloudauth20190307');
const { $OpenApiUtil } = require('@alicloud/openapi-core');
const { runPage } = require('./h5.cjs');

async function main() {
  const o = JSON.parse(process.argv[2]);
  const client = new Cloudauth.default(new $OpenApiUtil.Config({
    accessKeyId: o.keyId,
    accessKeySecret: o.keySecret,
    endpoint: o.endpoint,
    protocol: 'http',
  }));
  const req = new Cloudauth.InitFaceVerifyRequest({
    sceneId: o.sceneId,
    outerOrderNo: o.order,
    productCode: o.productCode,
    certType: o.certNo ? 'IDENTITY_CARD' : undefined,
    certName: o.certName,
    certNo: o.certNo,
    returnUrl: o.returnUrl,
    callbackUrl: o.callbackUrl,
    callbackToken: o.callbackToken,
    metaInfo: JSON.stringify({ deviceType: 'h5', zimVer: '3.0.0', appVersion: '1', bioMetaInfo: '4.1.0:1150976,0' }),
    model: 'MULTI_ACTION',
    faceContrastPicture: o.contrastPicture ? fs.readFileSync(o.contrastPicture).toString('base64') : undefined,
  });
  const init = (await client.initFaceVerify(req)).body;
  const out = {
    init: {
      code: init.code, message: init.message,
      certifyId: init.resultObject && init.resultObject.certifyId,
      certifyUrl: init.resultObject && init.resultObject.certifyUrl,
    },
  };
  console.error(`[cloud-case] ${o.order}: init ${init.code} ${out.init.certifyId || init.message}`);
  if (init.code !== '200') {
    console.log(JSON.stringify(out));
    return;
  }
  if (o.page) out.page = await runPage({ ...o.page, url: out.init.certifyUrl });
  const d = (await client.describeFaceVerify(new Cloudauth.DescribeFaceVerifyRequest({
    sceneId: o.sceneId, certifyId: out.init.certifyId,
  }))).body;
  out.describe = {
    code: d.code, message: d.message,
    passed: d.resultObject && d.resultObject.passed,
    subCode: d.resultObject && d.resultObject.subCode,
    materialInfo: d.resultObject && d.resultObject.materialInfo,
  };
  console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
