'use strict'

// nsqjs 0.13.0 over the IDENTIFY stream upgrades (tcp-protocol.md §6.1): TLS
// (verified against a test CA, with and without a client certificate),
// deflate, snappy, TLS+deflate; and AUTH (§7) against a test auth server.
//
// Certificates come from ../gen-certs.sh, generated into a temp dir when this
// file starts and removed when it ends.

const assert = require('node:assert/strict')
const {execFileSync} = require('node:child_process')
const crypto = require('node:crypto')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const tls = require('node:tls')
const zlib = require('node:zlib')
const {before, after, beforeEach} = require('node:test')

const {nsqTest, waitFor, expectNothing} = require('./harness')
const {AuthServer, GOOD_SECRET, NO_PERMS_SECRET} = require('./authserver')

const GEN_CERTS = path.join(__dirname, '..', 'gen-certs.sh')

let certDir = null
const cert = (name) => path.join(certDir, name)
const read = (name) => fs.readFileSync(cert(name))
let authServer = null

before(async () => {
  certDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsqjs-certs-'))
  try {
    execFileSync('bash', [GEN_CERTS, certDir], {stdio: ['ignore', 'pipe', 'pipe'], timeout: 60000})
  } catch (err) {
    throw new Error(`gen-certs.sh failed: ${err.message}\n${err.stdout || ''}${err.stderr || ''}`)
  }
  authServer = await new AuthServer().start()
})

after(async () => {
  if (authServer) await authServer.stop()
  if (certDir) fs.rmSync(certDir, {recursive: true, force: true})
})

beforeEach(() => {
  if (authServer) authServer.requests.length = 0
})

const serverTLS = () => [`--tls-cert=${cert('server.pem')}`, `--tls-key=${cert('server.key')}`]
const mutualTLS = () => [
  ...serverTLS(),
  `--tls-root-ca-file=${cert('ca.pem')}`,
  '--tls-client-auth-policy=require-verify',
]
const withAuth = (...more) => () => [`--auth-http-address=${authServer.address}`, ...more]

// nsqjs options: TLS verified against the test CA (hostname 127.0.0.1 is in the SAN).
const tlsClient = (extra = {}) => ({tls: true, tlsVerification: true, ca: read('ca.pem'), ...extra})

// What an nsqjs NSQDConnection really runs on: nsqjs trusts the IDENTIFY
// response, so check the sockets/streams it installed, not only what was asked.
function layers(nsqdConn) {
  const out = []
  if (nsqdConn.conn instanceof tls.TLSSocket) out.push('tls')
  if (nsqdConn.inflater) out.push(nsqdConn.inflater instanceof zlib.InflateRaw ? 'deflate' : 'snappy')
  return out.sort()
}

function identifyResponse(nsqdConn) {
  return nsqdConn.statemachine.identifyResponse
}

const digest = (bodies) =>
  bodies
    .map((b) => {
      const buf = Buffer.isBuffer(b) ? b : Buffer.from(b, 'latin1')
      return `${buf.length}:${crypto.createHash('sha256').update(buf).digest('hex').slice(0, 16)}`
    })
    .sort()

// PUB + MPUB and consume over clients made with `options`; checks the
// negotiated layers on both connections and every body intact, once.
async function roundtrip(ctx, topic, options, expectLayers, {consumerOptions = {}, producerOptions = {}} = {}) {
  const consumer = ctx.consumer(topic, 'ch', {maxInFlight: 10, ...options, ...consumerOptions})
  const producer = ctx.producer({...options, ...producerOptions})
  await consumer.ready()
  await producer.ready()

  const readerConns = consumer.reader.readerRdy.connections.map((c) => c.conn)
  assert.equal(readerConns.length, 1)
  for (const [who, conn] of [
    ['Reader', readerConns[0]],
    ['Writer', producer.writer.conn],
  ]) {
    assert.deepEqual(
      layers(conn),
      [...expectLayers].sort(),
      `${who} layers; IDENTIFY response ${JSON.stringify(identifyResponse(conn))}`
    )
  }

  const bodies = [
    Buffer.from('hello'),
    Buffer.from(Array.from({length: 1024}, (_, i) => i % 256)),
    Buffer.from('compressible '.repeat(10000)),
    crypto.randomBytes(300 * 1024),
  ]
  await producer.publish(topic, bodies[0])
  await producer.publish(topic, bodies.slice(1))
  await waitFor(() => consumer.deliveries.length >= bodies.length, 10000, `all ${bodies.length} messages`)
  await expectNothing(() => consumer.deliveries.length > bodies.length, 300, 'duplicate delivery')
  assert.deepEqual(digest(consumer.bodies()), digest(bodies), 'bodies differ after the round trip')
  assert.deepEqual(consumer.errors, [])
  assert.deepEqual(producer.errors, [])
  return {consumer, producer, readerConn: readerConns[0], writerConn: producer.writer.conn}
}

async function stats(nsqd, topic) {
  const res = await fetch(`http://${nsqd.httpAddress}/stats?format=json&topic=${topic}`)
  assert.equal(res.status, 200)
  const body = await res.json()
  const consumers = (body.topics || []).flatMap((t) => t.channels.flatMap((c) => c.clients || []))
  return {consumers, producers: body.producers || []}
}

nsqTest(
  'TLS: publish and consume with the server verified against the CA',
  30000,
  async (ctx) => {
    const {readerConn, writerConn} = await roundtrip(ctx, 'nsqjs_tls', tlsClient(), ['tls'])
    for (const conn of [readerConn, writerConn]) {
      assert.equal(identifyResponse(conn).tls_v1, true)
      assert.equal(conn.conn.authorized, true, 'server certificate verified')
    }
    const {consumers, producers} = await stats(ctx.nsqd, 'nsqjs_tls')
    assert.equal(consumers.length, 1)
    for (const st of [...consumers, ...producers]) {
      assert.equal(st.tls, true, JSON.stringify(st))
      assert.match(st.tls_version, /^TLS1\.[23]$/, JSON.stringify(st))
    }
  },
  serverTLS
)

nsqTest(
  'TLS: a client that does not trust the CA refuses the server',
  30000,
  async (ctx) => {
    // No `ca`: the test CA is not in Node's default store, so verification fails.
    const consumer = ctx.consumer('nsqjs_tls_untrusted', 'ch', {tls: true, tlsVerification: true})
    await waitFor(() => consumer.errors.length > 0, 10000, 'a certificate verification error')
    assert.match(consumer.errors.join('; '), /certificate/i)
    assert.equal(consumer.subscribed, false)
  },
  serverTLS
)

nsqTest(
  'TLS with a client certificate (require-verify)',
  30000,
  async (ctx) => {
    const options = tlsClient({cert: read('client.pem'), key: read('client.key')})
    await roundtrip(ctx, 'nsqjs_tls_mutual', options, ['tls'])
  },
  mutualTLS
)

nsqTest(
  'deflate: publish and consume',
  30000,
  async (ctx) => {
    const {readerConn, writerConn} = await roundtrip(ctx, 'nsqjs_deflate', {deflate: true, deflateLevel: 3}, ['deflate'])
    for (const conn of [readerConn, writerConn]) {
      const resp = identifyResponse(conn)
      assert.equal(resp.deflate, true)
      assert.equal(resp.deflate_level, 3)
    }
    const {consumers, producers} = await stats(ctx.nsqd, 'nsqjs_deflate')
    for (const st of [...consumers, ...producers]) assert.equal(st.deflate, true, JSON.stringify(st))
  },
  []
)

nsqTest(
  'TLS + deflate: publish and consume',
  30000,
  async (ctx) => {
    await roundtrip(ctx, 'nsqjs_tls_deflate', tlsClient({deflate: true}), ['deflate', 'tls'])
  },
  serverTLS
)

nsqTest(
  'snappy: publish and consume',
  30000,
  async (ctx) => {
    const {readerConn} = await roundtrip(ctx, 'nsqjs_snappy', {snappy: true}, ['snappy'])
    assert.equal(identifyResponse(readerConn).snappy, true)
  },
  []
)

nsqTest(
  'TLS + snappy: publish and consume',
  30000,
  async (ctx) => {
    await roundtrip(ctx, 'nsqjs_tls_snappy', tlsClient({snappy: true}), ['snappy', 'tls'])
  },
  serverTLS
)

nsqTest(
  'AUTH: publish and consume with the right secret',
  30000,
  async (ctx) => {
    const {readerConn, writerConn} = await roundtrip(ctx, 'nsqjs_auth', {authSecret: GOOD_SECRET}, [])
    for (const conn of [readerConn, writerConn]) {
      assert.equal(identifyResponse(conn).auth_required, true)
      assert.deepEqual(conn.auth, {identity: 'u', identity_url: '', permission_count: 1})
    }
    const reqs = authServer.requests.filter((r) => r.path === '/auth')
    assert.equal(reqs.length, 2, JSON.stringify(authServer.requests))
    for (const r of reqs) {
      assert.equal(r.method, 'GET')
      assert.deepEqual(r.query, {
        common_name: [''],
        remote_ip: ['127.0.0.1'],
        secret: [GOOD_SECRET],
        tls: ['false'],
      })
    }
  },
  withAuth()
)

nsqTest(
  'AUTH: a secret without authorizations cannot consume',
  30000,
  async (ctx) => {
    const t = 'nsqjs_auth_denied'
    // HTTP is not behind AUTH: queue one message on the channel first.
    for (const [p, body] of [
      [`/topic/create?topic=${t}`, ''],
      [`/channel/create?topic=${t}&channel=ch`, ''],
      [`/pub?topic=${t}`, 'secret payload'],
    ]) {
      const res = await fetch(`http://${ctx.nsqd.httpAddress}${p}`, {method: 'POST', body})
      assert.equal(res.status, 200, `${p}: ${res.status}`)
    }
    const bad = ctx.consumer(t, 'ch', {authSecret: NO_PERMS_SECRET})
    await waitFor(() => bad.errors.length > 0, 10000, 'nsqd to refuse AUTH')
    assert.match(bad.errors.join('; '), /E_UNAUTHORIZED/)
    await expectNothing(() => bad.deliveries.length > 0 || bad.subscribed, 1000, 'a delivery without authorization')

    const good = ctx.consumer(t, 'ch', {authSecret: GOOD_SECRET})
    await waitFor(() => good.deliveries.length > 0, 10000, 'the queued message with the right secret')
    assert.deepEqual(good.bodies(), ['secret payload'])
  },
  withAuth()
)
