// Fixed inputs shared by the self-test and the driver suite: the worked
// example of PROTOCOL.md Appendix A (computed independently with Python's
// cryptography package) and libsignal's own XEdDSA known answer.

import { h } from './bytes.mjs';

export const appendixA = {
  ikA: h('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a'),
  ikB: h('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb'),
  spkB: h('1a428c959dc8ac46b504e694e600ce18e7637b56a89af77792adfa8f38fa3edd'),
  opkB: h('66747c26e3814d6356681ad0a58b0acbcc60b371254d410d4fe49399196d579a'),
  ekA: h('fc9f32de74a2b86a3fb58043fdb09038420c82b75a040853d920591c1e6b0bd9'),
  dhsA: h('eecbeed9319cd32322b27f2773580b6119255c572678cb0c9a2ce0800f5e132d'),
  dhsB: h('1ab50968cff1eb91a8bb10a983d39b779f6ac2a49a55ae008660210fee4d4ca3'),
  encoded: {
    ikA: h('058520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a'),
    ikB: h('05de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f'),
    spkB: h('05f5cb3a82006cbe2640317d9e0c2eeab849022974a35fedb4646fae694457b64a'),
    opkB: h('05b72f396156afce6b38ef71d4ac644ba10658f2a4a6cb35e9785ac2f7b3317d2e'),
    ekA: h('05de656a6528b7c713d387e8c918fa07a3e7cd9f15eaa626af648bf25335d41b0d'),
    dhsA: h('0540a76d488cab900d970f92c5efe80a44185e5990dc0299fbd595b330f49c4405'),
    dhsB: h('05c7b25c4d75316e15c966a5ba84875a9f1b88dca2f6c5ee9ef3567882104bec3a'),
  },
  spkId: 1,
  opkId: 7,
  dh: [
    h('ce0a44df4994e24affa198a2699701686ee030a08c46315d641e3a83f30b4425'),
    h('c12cd4be5cb47cc1f2cc58cf1b1c6f8eb7edccea1c8e35631afaafa4a805b63f'),
    h('dfeaa8b293367f3434ad5eec3b45f595d3088f04a9455515ba991a4f5a33927d'),
    h('e0a7f067915d6021a673757187265736ad7e205dde09a6cdf93c9c0285eb3a60'),
  ],
  sk: h('68e14b67e4ea0268a89b2e268d4c37d0e5465ad0c1d04b303a5509e56b245f1f'),
  aliceRk: h('5ea44220477c40b0ac06890f6adbccadbcf2bbdeb6820c5dc33a626fafb3c06d'),
  aliceCks: h('3c142ebf371c6bfd7818295d1842efae9671c75c20e53e1d96d6827eddf48b6b'),
  mk0: h('b479b2953ac402e10336a439e59d7b10430368de7fcf9d40ae5587899e9a7bb6'),
  nextCks: h('1a8bda4bd3f04fac47706c92ee178f1f0ed935de7cebeda970336af96486e2ca'),
  aesKey0: h('dbdadcf7d0abb623ddb821745d43a780c48c5965497ab3baf0af1cb5917e0e1a'),
  nonce0: h('2c1d8f93a615468adae5a2ff'),
  plaintext1: h('48656c6c6f2c20426f6221'), // "Hello, Bob!"
  message1: h(
    '010540a76d488cab900d970f92c5efe80a44185e5990dc0299fbd595b330f49c44050000000000000000' +
      'bebe3fd6325f49d695a168139c5fd356930c32c64b938758cd5c44',
  ),
  prekeyMessage1: h(
    '0201058520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a' +
      '05de656a6528b7c713d387e8c918fa07a3e7cd9f15eaa626af648bf25335d41b0d0000000100000007' +
      '010540a76d488cab900d970f92c5efe80a44185e5990dc0299fbd595b330f49c44050000000000000000' +
      'bebe3fd6325f49d695a168139c5fd356930c32c64b938758cd5c44',
  ),
  bobRk: h('7b02f38d8e4e95b4b9eb96d68825cdec65233bfee566dfb5b620529c70cf2c20'),
  bobCks: h('457f8893acc4be670dcf2838a56d2a03b245cf40252c13251a8d7d5654cd9814'),
  plaintext2: h('486920416c696365'), // "Hi Alice"
  reply: h(
    '0105c7b25c4d75316e15c966a5ba84875a9f1b88dca2f6c5ee9ef3567882104bec3a0000000000000000' +
      '31c59105d6a54de1f3c6e6f2d1c765690cfcba0190862692',
  ),
};

/** libsignal's test_signature (rust/core/src/curve/curve25519.rs): a signature with the sign bit set. */
export const libsignalKat = {
  priv: h('c097248412e58bf05df487968205132794178e367637f5818f81e0e6ce73e865'),
  pub: h('ab7e717d4a163b7d9a1d8071dfe9dcf8cdcd1cea3339b6356be84d887e322c64'),
  msg: h('05edce9d9c415ca78cb7252e72c2c4a554d3eb29485a0e1d503118d1a82d99fb4a'),
  sig: h(
    '5de88ca9a89b4a115da79109c67c9c7464a3e4180274f1cb8c63c2984e286dfb' +
      'ede82deb9dcd9fae0bfbb821569b3d9001bd8130cd11d486cef047bd60b86e88',
  ),
};

/** Canonical u-coordinates of small order on Curve25519 (2.3), as 32-byte LE. */
export const smallOrderU = [
  h('0000000000000000000000000000000000000000000000000000000000000000'), // order 2 (u = 0)
  h('0100000000000000000000000000000000000000000000000000000000000000'), // order 4 (u = 1)
  h('e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800'), // order 8
  h('5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157'), // order 8
];

/** p − 1 as 32-byte LE: on the twist side of the map, rejected by XEdDSA verify. */
export const uPminus1 = h('ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f');
/** p as 32-byte LE: the smallest non-canonical u. */
export const uP = h('edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f');
