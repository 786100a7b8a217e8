// Apollo Client 3 with createPersistedQueryLink, as a single-page app uses
// it, against a running roster: registers, logs in, then reads `me` with
// hashed GET requests. Checks each HTTP request the link sends, not only
// the results. Exits non-zero on any difference.
//   node apq.mjs http://127.0.0.1:PORT/graphql
import { createHash } from 'node:crypto';
import { ApolloClient, HttpLink, InMemoryCache, gql } from '@apollo/client/core/index.js';
import { createPersistedQueryLink } from '@apollo/client/link/persisted-queries/index.js';

const url = process.argv[2];
const sent = [];

// Notes what goes over the wire, then sends it with Node's fetch.
async function recordingFetch(input, init = {}) {
  const target = new URL(typeof input === 'string' ? input : input.url);
  const body = init.body ? JSON.parse(init.body) : null;
  const method = init.method ?? 'GET';
  const response = await fetch(input, init);
  const answer = await response.clone().json();
  sent.push({
    method,
    withQuery: method === 'GET' ? target.searchParams.has('query') : Boolean(body?.query),
    hash: method === 'GET'
      ? JSON.parse(target.searchParams.get('extensions') ?? '{}').persistedQuery?.sha256Hash
      : body?.extensions?.persistedQuery?.sha256Hash,
    code: answer.errors?.[0]?.extensions?.code ?? null,
  });
  return response;
}

function client(token) {
  const http = new HttpLink({
    uri: url,
    fetch: recordingFetch,
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
  const persisted = createPersistedQueryLink({
    sha256: (text) => createHash('sha256').update(text).digest('hex'),
    useGETForHashedQueries: true,
  });
  return new ApolloClient({ link: persisted.concat(http), cache: new InMemoryCache() });
}

function expect(what, actual, expected) {
  const [a, e] = [JSON.stringify(actual), JSON.stringify(expected)];
  if (a !== e) {
    console.error(`apollo-client: ${what}: expected ${e}, got ${a}`);
    process.exit(1);
  }
}

const REGISTER = gql`mutation Register($input: RegisterInput!) { register(input: $input) { username } }`;
const LOGIN = gql`mutation LogIn($input: LoginInput!) { login(input: $input) { accessToken } }`;
const ME = gql`query Me { me { username } }`;
const password = 'a long enough passphrase for apollo';

const anonymous = client();
const registered = await anonymous.mutate({
  mutation: REGISTER,
  variables: { input: { username: 'apollo', email: 'apollo@example.com', password } },
});
expect('register', registered.data.register.username, 'apollo');
const loggedIn = await anonymous.mutate({
  mutation: LOGIN,
  variables: { input: { username: 'apollo', password } },
});
const token = loggedIn.data.login.accessToken;
// Mutations: a POST with the hash alone, not found, then the POST with the
// document, which roster keeps.
expect('mutations', sent.map(({ method, withQuery, code }) => [method, withQuery, code]), [
  ['POST', false, 'PERSISTED_QUERY_NOT_FOUND'],
  ['POST', true, null],
  ['POST', false, 'PERSISTED_QUERY_NOT_FOUND'],
  ['POST', true, null],
]);

sent.length = 0;
const first = await client(token).query({ query: ME });
expect('me', first.data.me.username, 'apollo');
// A GET with the hash alone, not found; the link retries with a POST
// carrying the document.
expect('first read', sent.map(({ method, withQuery, code }) => [method, withQuery, code]), [
  ['GET', false, 'PERSISTED_QUERY_NOT_FOUND'],
  ['POST', true, null],
]);
const hash = sent[0].hash;
expect('hash', /^[0-9a-f]{64}$/.test(hash), true);

sent.length = 0;
const again = await client(token).query({ query: ME });
expect('me again', again.data.me.username, 'apollo');
// A new client (a new page load): the hash alone over GET is enough now.
expect('second read', sent.map(({ method, withQuery, code, hash: h }) => [method, withQuery, code, h]), [
  ['GET', false, null, hash],
]);
console.log('apollo-client: register, login and me through createPersistedQueryLink: ok');
