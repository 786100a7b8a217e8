// Runs the GraphQL-over-HTTP working group's server audit (graphql-http's
// serverAudits) against a running GraphQL server and prints one line per
// audit. Exits 1 when any audit is not ok (a failed MUST is "error", a failed
// SHOULD "warn", a failed MAY "notice"), 2 on bad usage.
//
//   npm ci --ignore-scripts --no-audit --no-fund   # in this folder, once
//   node audit.mjs http://127.0.0.1:PORT/graphql
import { readFileSync } from 'node:fs';
import { serverAudits } from 'graphql-http';

const url = process.argv[2];
if (!url || !/^https?:\/\//.test(url)) {
  console.error('usage: node audit.mjs http://HOST:PORT/graphql');
  process.exit(2);
}

const { version } = JSON.parse(
  readFileSync(new URL('./node_modules/graphql-http/package.json', import.meta.url), 'utf8'),
);

// Node's own fetch, with a deadline per request so that a hung server fails
// the run instead of stalling CI. The audit's requests are otherwise unchanged.
const TIMEOUT_MS = 10_000;
const fetchFn = (input, init = {}) =>
  fetch(input, { ...init, signal: AbortSignal.timeout(TIMEOUT_MS) });

const counts = { ok: 0, notice: 0, warn: 0, error: 0 };
// One audit at a time, in the package's order, so the output is stable.
for (const { id, name, fn } of serverAudits({ url, fetchFn })) {
  let result;
  try {
    result = await fn();
  } catch (err) {
    // The package throws only on what is not an assertion (refused
    // connection, timeout, ...): count it as an error of that audit.
    result = { id, name, status: 'error', reason: `fatal: ${err?.cause?.message ?? err?.message ?? err}` };
  }
  counts[result.status] = (counts[result.status] ?? 0) + 1;
  let line = `${result.id} ${result.status} ${result.name}`;
  if (result.status !== 'ok') {
    line += ` -- ${result.reason}`;
    const res = result.response;
    if (res && typeof res.status === 'number') {
      line += ` (got ${res.status}, content-type ${res.headers.get('content-type') ?? 'none'})`;
    }
  }
  console.log(line);
}

const total = Object.values(counts).reduce((a, b) => a + b, 0);
const failed = total - counts.ok;
console.log(
  `graphql-http ${version} server audit of ${url}: ${total} audits, ` +
    `${counts.ok} ok, ${counts.error} error, ${counts.warn} warn, ${counts.notice} notice`,
);
console.log(`graphql-http-audit: ${counts.ok} passed, ${failed} failed`);
process.exit(total > 0 && failed === 0 ? 0 : 1);
