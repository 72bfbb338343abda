'use strict'

// nsqjs 0.13.0 discovering our nsqd nodes through our nsqlookupd.
//
// Every test gets one nsqlookupd and two nsqd registered with it
// (--lookupd-tcp-address, --broadcast-address=127.0.0.1). The Reader is given
// only the lookupd's HTTP address and polls it every second; it must find both
// nodes and consume what is published to either of them.

const assert = require('node:assert/strict')
const {test} = require('node:test')

const {waitFor, expectNothing, Consumer, Producer} = require('./harness')
const {startNsqd, startNsqlookupd} = require('./nsqd')

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// One request to a daemon's HTTP API: {status, body (parsed JSON when possible)}.
async function http(method, address, path) {
  const res = await fetch(`http://${address}${path}`, {method, signal: AbortSignal.timeout(5000)})
  const text = await res.text()
  let body = text
  try {
    body = JSON.parse(text)
  } catch (e) {
    // not JSON: keep the text
  }
  return {status: res.status, body}
}

// Poll an async condition until truthy; the bound turns a lost event into a clear failure.
async function waitAsync(cond, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await cond()
    if (value) return value
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(50)
  }
}

async function createTopic(node, topic) {
  const r = await http('POST', node.httpAddress, `/topic/create?topic=${topic}`)
  assert.equal(r.status, 200, `nsqd /topic/create: ${JSON.stringify(r.body)}`)
}

// {producers: sorted "addr:tcp_port" list, channels: sorted list}; empty if the topic is unknown.
async function lookup(lookupd, topic) {
  const r = await http('GET', lookupd.httpAddress, `/lookup?topic=${topic}`)
  if (r.status === 404) return {producers: [], channels: []}
  assert.equal(r.status, 200, `lookupd /lookup: ${JSON.stringify(r.body)}`)
  return {
    producers: r.body.producers.map((p) => `${p.broadcast_address}:${p.tcp_port}`).sort(),
    channels: [...r.body.channels].sort(),
  }
}

// Number of consumers on topic/channel of `node`, or null if the channel does not exist.
async function channelClients(node, topic, channel) {
  const r = await http('GET', node.httpAddress, `/stats?format=json&topic=${topic}&channel=${channel}`)
  assert.equal(r.status, 200, `nsqd /stats: ${JSON.stringify(r.body)}`)
  for (const t of r.body.topics || []) {
    if (t.topic_name !== topic) continue
    for (const c of t.channels || []) {
      if (c.channel_name === channel) return (c.clients || []).length
    }
  }
  return null
}

// Defines a test with one lookupd and two nsqd nodes registered with it; every
// client is closed at the end and failures carry the daemons' log tails.
function clusterTest(name, timeoutMs, fn) {
  test(name, {timeout: timeoutMs}, async (t) => {
    const lookupd = await startNsqlookupd(t)
    const args = ['--broadcast-address=127.0.0.1', `--lookupd-tcp-address=${lookupd.tcpAddress}`]
    const a = await startNsqd(t, args)
    const b = await startNsqd(t, args)
    const clients = []
    const ctx = {
      lookupd,
      a,
      b,
      consumer(topic, channel, options = {}) {
        const c = new Consumer(null, topic, channel, {
          lookupdHTTPAddresses: [lookupd.httpAddress],
          lookupdPollInterval: 1,
          ...options,
        })
        clients.push(c)
        return c
      },
      producer(node) {
        const p = new Producer(node)
        clients.push(p)
        return p
      },
    }
    try {
      await fn(ctx)
    } catch (err) {
      for (const [label, d] of [['nsqlookupd', lookupd], ['nsqd A', a], ['nsqd B', b]]) {
        err.message += `\n----- ${label} stderr (tail) -----\n${d.log.slice(-4000)}`
      }
      throw err
    } finally {
      for (const c of clients) {
        try {
          c.close()
        } catch (e) {
          // closing a half-open client must not mask the test's own result
        }
      }
    }
  })
}

function assertNoErrors(...clients) {
  for (const c of clients) {
    assert.deepEqual(c.errors, [], `client saw errors: ${c.errors.join('; ')}`)
  }
}

clusterTest('Reader consumes from both nodes through lookupd', 30000, async (ctx) => {
  const {lookupd, a, b} = ctx
  const topic = 'nsqjs_lookupd_both'
  await createTopic(a, topic)
  await createTopic(b, topic)
  const want = [a.tcpAddress, b.tcpAddress].sort()
  await waitAsync(
    async () => JSON.stringify((await lookup(lookupd, topic)).producers) === JSON.stringify(want),
    10000,
    'both nodes in lookupd /lookup producers'
  )

  const consumer = ctx.consumer(topic, 'ch', {maxInFlight: 10})
  await waitAsync(
    async () => (await channelClients(a, topic, 'ch')) === 1 && (await channelClients(b, topic, 'ch')) === 1,
    10000,
    'the Reader subscribed on both nodes'
  )
  await waitAsync(
    async () => (await lookup(lookupd, topic)).channels.includes('ch'),
    10000,
    'the channel in lookupd /lookup channels'
  )

  const pa = ctx.producer(a)
  const pb = ctx.producer(b)
  await pa.ready()
  await pb.ready()
  const sent = []
  for (let i = 0; i < 5; i++) {
    for (const [name, p] of [['a', pa], ['b', pb]]) {
      const body = `${name}-${i}`
      await p.publish(topic, body)
      sent.push(body)
    }
  }

  await waitFor(() => consumer.deliveries.length >= sent.length, 10000, 'every message from both nodes')
  await expectNothing(() => consumer.deliveries.length > sent.length, 300, 'duplicate delivery')
  assert.deepEqual([...consumer.bodies()].sort(), [...sent].sort())
  assert.ok(consumer.deliveries.every((d) => d.attempts === 1))
  assertNoErrors(consumer, pa, pb)
})

clusterTest('Reader discovers a node that gains the topic later', 30000, async (ctx) => {
  const {lookupd, a, b} = ctx
  const topic = 'nsqjs_lookupd_late'
  await createTopic(a, topic)
  await waitAsync(
    async () => JSON.stringify((await lookup(lookupd, topic)).producers) === JSON.stringify([a.tcpAddress]),
    10000,
    'node A in lookupd /lookup producers'
  )

  const consumer = ctx.consumer(topic, 'ch', {maxInFlight: 10})
  await waitAsync(async () => (await channelClients(a, topic, 'ch')) === 1, 10000, 'the Reader subscribed on node A')
  await waitAsync(
    async () => (await lookup(lookupd, topic)).channels.includes('ch'),
    10000,
    'the channel in lookupd /lookup channels'
  )
  assert.equal(await channelClients(b, topic, 'ch'), null, 'node B must not have the topic yet')

  // Node B's first publish creates the topic there; nsqd pre-creates the channel lookupd
  // knows, so the message waits for the Reader, which finds B on its next lookupd poll.
  const pb = ctx.producer(b)
  await pb.ready()
  await pb.publish(topic, 'late-b')
  assert.notEqual(await channelClients(b, topic, 'ch'), null, 'channel pre-created on node B')
  await waitFor(() => consumer.bodies().includes('late-b'), 10000, 'the message published on node B')
  assert.equal(await channelClients(b, topic, 'ch'), 1, 'the Reader subscribed on node B')

  const pa = ctx.producer(a)
  await pa.ready()
  await pa.publish(topic, 'then-a')
  await waitFor(() => consumer.bodies().includes('then-a'), 5000, 'the message published on node A')
  await expectNothing(() => consumer.deliveries.length > 2, 300, 'duplicate delivery')
  assert.deepEqual([...consumer.bodies()].sort(), ['late-b', 'then-a'])
  assertNoErrors(consumer, pa, pb)
})
