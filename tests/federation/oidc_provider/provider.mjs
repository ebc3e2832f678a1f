// A real OpenID Connect provider on loopback for Portcullis's federation tests.
//
// It is panva's certified `oidc-provider`, configured with one confidential client, a few test
// users and its own sign-in page (instead of devInteractions, so a test can choose whether the
// sign-in counted as multi-factor: `amr` is ["pwd"] or ["pwd", "mfa"]). Nothing in the tokens it
// issues is faked: they come from its authorization and token endpoints, signed with a key it
// generates at start-up and publishes at its jwks_uri.
//
//   node provider.mjs --redirect-uri http://127.0.0.1:8000/signin/oidc/callback [--port 0]
//
// The first line on stdout is JSON: {"issuer": "...", "client_id": "...", "client_secret": "..."}.

import { generateKeyPairSync, randomUUID } from 'node:crypto';
import http from 'node:http';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    'redirect-uri': { type: 'string', multiple: true, default: [] },
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
  },
});

export const CLIENT_ID = 'portcullis-console';
export const CLIENT_SECRET = 'portcullis-console-test-secret-0123456789abcdef';
// A second client of the same provider: its tokens carry an audience Portcullis does not trust.
export const OTHER_CLIENT_ID = 'some-other-application';

// The workforce. "tags" is AWS's session-tag claim (IAM User Guide, "Passing session tags using
// AssumeRoleWithWebIdentity").
const USERS = {
  alice: {
    password: 'alice-password-1',
    claims: {
      email: 'alice@idp.example',
      email_verified: true,
      name: 'Alice Example',
      'https://aws.amazon.com/tags': {
        principal_tags: { team: ['platform'], cost_center: ['1234'] },
        transitive_tag_keys: ['team'],
      },
    },
  },
  mallory: {
    password: 'mallory-password-1',
    claims: { email: 'mallory@idp.example', email_verified: true, name: 'Mallory Example' },
  },
};
// The one-time code that makes a sign-in multi-factor at this test provider.
const TEST_OTP = '424242';

function escape(value) {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title, body) {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${escape(title)}</title></head>
<body><h1>${escape(title)}</h1>${body}</body></html>`;
}

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: `test-rsa-${randomUUID()}`, alg: 'RS256', use: 'sig' };

const server = http.createServer();
server.listen(Number(args.port), args.host, () => {
  const { port } = server.address();
  const issuer = `http://${args.host}:${port}`;

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
        redirect_uris: args['redirect-uri'],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
      {
        client_id: OTHER_CLIENT_ID,
        client_secret: `${OTHER_CLIENT_ID}-secret-0123456789abcdef`,
        redirect_uris: args['redirect-uri'],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    jwks: { keys: [signingKey] },
    claims: {
      // amr and auth_time are claims of the openid scope, so they reach the ID token.
      openid: ['sub', 'amr', 'auth_time', 'https://aws.amazon.com/tags'],
      email: ['email', 'email_verified'],
      profile: ['name'],
    },
    // Scope claims go into the ID token itself, as Okta, Entra ID and Google do for the claims
    // a relying party asked for.
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: false } },
    pkce: { required: () => true },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    async findAccount(ctx, id) {
      const user = USERS[id];
      if (!user) return undefined;
      return { accountId: id, async claims() { return { sub: id, ...user.claims }; } };
    },
    cookies: { keys: ['portcullis-test-provider-cookie-key'] },
  });
  provider.on('server_error', (ctx, err) => console.error('server_error', err));

  const providerCallback = provider.callback();

  server.on('request', async (req, res) => {
    const match = /^\/interaction\/([^/?]+)(\/login)?/.exec(req.url);
    if (!match) {
      providerCallback(req, res);
      return;
    }
    try {
      const details = await provider.interactionDetails(req, res);
      const { uid, prompt, params, session } = details;
      if (prompt.name === 'login' && req.method === 'GET') {
        res.setHeader('content-type', 'text/html; charset=utf-8');
        res.end(page('Sign in to the test identity provider', `
<form method="post" action="/interaction/${escape(uid)}/login" autocomplete="off">
  <label>Username <input name="login" autofocus></label>
  <label>Password <input name="password" type="password"></label>
  <label>One-time code (optional) <input name="otp"></label>
  <button type="submit">Sign in</button>
</form>`));
        return;
      }
      if (prompt.name === 'login' && req.method === 'POST') {
        const form = await readForm(req);
        const login = form.get('login') || '';
        const user = USERS[login];
        if (!user || user.password !== form.get('password')) {
          res.statusCode = 401;
          res.setHeader('content-type', 'text/html; charset=utf-8');
          res.end(page('Sign-in failed', '<p>Wrong username or password.</p>'));
          return;
        }
        const amr = form.get('otp') === TEST_OTP ? ['pwd', 'mfa'] : ['pwd'];
        await provider.interactionFinished(req, res, { login: { accountId: login, amr } },
          { mergeWithLastSubmission: false });
        return;
      }
      if (prompt.name === 'consent') {
        // Administrator-consented application: grant what was asked, without a page.
        const grant = details.grantId
          ? await provider.Grant.find(details.grantId)
          : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
        if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
        if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
        await provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } },
          { mergeWithLastSubmission: true });
        return;
      }
      res.statusCode = 501;
      res.end('not implemented');
    } catch (err) {
      res.statusCode = 400;
      res.setHeader('content-type', 'text/plain; charset=utf-8');
      res.end(`interaction error: ${err.message}`);
    }
  });

  process.stdout.write(`${JSON.stringify({
    issuer, client_id: CLIENT_ID, client_secret: CLIENT_SECRET, other_client_id: OTHER_CLIENT_ID,
    kid: signingKey.kid, test_otp: TEST_OTP,
  })}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));
