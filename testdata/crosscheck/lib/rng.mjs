// A seeded, reproducible byte generator for tests and harnesses: block i is
// SHA-256(seed || u32be(i)). Not for keys outside tests.

import { concat, u32be, utf8 } from './bytes.mjs';
import { sha256 } from './primitives.mjs';

export class SeededRng {
  constructor(seed) {
    this.seed = utf8(`ratchetkit crosscheck seed ${seed}`);
    this.counter = 0;
    this.pool = new Uint8Array(0);
  }

  bytes(n) {
    while (this.pool.length < n) {
      this.pool = concat(this.pool, sha256(concat(this.seed, u32be(this.counter++))));
    }
    const out = this.pool.slice(0, n);
    this.pool = this.pool.slice(n);
    return out;
  }

  /** A uniform integer in [0, n) for 0 < n <= 2^32. */
  int(n) {
    const limit = Math.floor(0x100000000 / n) * n;
    for (;;) {
      const b = this.bytes(4);
      const x = ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0;
      if (x < limit) return x % n;
    }
  }

  /** True with probability p. */
  chance(p) {
    return this.int(1000000) < p * 1000000;
  }

  pick(array) {
    return array[this.int(array.length)];
  }
}
