'use strict'

// nsqjs 0.13.0 against our nsqd.
//
// Timing notes: nsqd finds expired in-flight and due deferred messages with a
// periodic scanner that (in the reference) only picks up a new channel at its
// next 5 s refresh, so waits on deferral/timeout carry a 15 s bound while the
// lower bounds ("not before the delay") are exact.

const assert = require('node:assert/strict')
const {performance} = require('node:perf_hooks')

const {nsqTest, waitFor, expectNothing} = require('./harness')

const SCAN_WAIT = 15000

const topic = (name) => `nsqjs_${name}`
const range = (n, f) => Array.from({length: n}, (_, i) => f(i))

function assertNoErrors(...clients) {
  for (const c of clients) {
    assert.deepEqual(c.errors, [], `client saw errors: ${c.errors.join('; ')}`)
  }
}

nsqTest('PUB delivers body and metadata', 30000, async (ctx) => {
  const t = topic('pub')
  const consumer = ctx.consumer(t, 'ch')
  const producer = ctx.producer()
  await consumer.ready()
  await producer.ready()

  const beforeNs = BigInt(Date.now() - 1000) * 1000000n
  await producer.publish(t, 'hello interop')
  await waitFor(() => consumer.deliveries.length > 0, 5000, 'PUBed message')
  const afterNs = BigInt(Date.now() + 1000) * 1000000n

  const d = consumer.deliveries[0]
  assert.equal(d.body, 'hello interop')
  assert.equal(d.attempts, 1)
  assert.match(d.id, /^[0-9a-f]{16}$/)
  // timestamp is the publish time in nanoseconds
  assert.ok(d.timestamp >= beforeNs && d.timestamp <= afterNs, `timestamp ${d.timestamp}`)
  await expectNothing(() => consumer.deliveries.length > 1, 300, 'a second delivery of a FINed message')
  assertNoErrors(consumer, producer)
})

nsqTest('MPUB delivers every message once', 30000, async (ctx) => {
  const t = topic('mpub')
  const bodies = [...range(25, (i) => `m-${i}`), 'x'.repeat(20000)]
  const consumer = ctx.consumer(t, 'ch', {maxInFlight: 10})
  const producer = ctx.producer()
  await consumer.ready()
  await producer.ready()

  await producer.publish(t, bodies)
  await waitFor(() => consumer.deliveries.length >= bodies.length, 10000, 'all MPUB messages')
  await expectNothing(() => consumer.deliveries.length > bodies.length, 300, 'duplicate delivery')

  assert.deepEqual([...consumer.bodies()].sort(), [...bodies].sort())
  assert.ok(consumer.deliveries.every((d) => d.attempts === 1))
  assert.equal(new Set(consumer.deliveries.map((d) => d.id)).size, bodies.length, 'message IDs must be unique')
  assertNoErrors(consumer, producer)
})

nsqTest('DPUB is held for the delay', 40000, async (ctx) => {
  const t = topic('dpub')
  const delayMs = 1500
  const consumer = ctx.consumer(t, 'ch', {maxInFlight: 5})
  const producer = ctx.producer()
  await consumer.ready()
  await producer.ready()

  const sent = performance.now()
  await producer.deferPublish(t, 'deferred', delayMs)
  await producer.publish(t, 'immediate')

  await waitFor(() => consumer.bodies().includes('immediate'), 5000, 'the non-deferred message')
  await waitFor(() => consumer.bodies().includes('deferred'), SCAN_WAIT, 'the DPUB message')

  assert.equal(consumer.bodies()[0], 'immediate', 'deferred message overtook an immediate one')
  const deferred = consumer.deliveries.find((d) => d.body === 'deferred')
  const waited = deferred.at - sent
  assert.ok(waited >= delayMs, `DPUB ${delayMs} ms delivered after only ${waited.toFixed(1)} ms`)
  assert.equal(deferred.attempts, 1)
  assert.equal(consumer.deliveries.length, 2)
  assertNoErrors(consumer, producer)
})

nsqTest('REQ with delay redelivers after the delay', 40000, async (ctx) => {
  const t = topic('req')
  let requeuedAt = null
  const consumer = ctx.consumer(t, 'ch', {}, (d) => {
    if (d.attempts === 1) {
      requeuedAt = performance.now()
      d.msg.requeue(1000, false)
    } else {
      d.msg.finish()
    }
  })
  const producer = ctx.producer()
  await consumer.ready()
  await producer.ready()

  await producer.publish(t, 'requeue me')
  await waitFor(() => consumer.deliveries.length >= 2, SCAN_WAIT, 'redelivery after REQ')

  const [first, second] = consumer.deliveries
  assert.deepEqual([first.attempts, second.attempts], [1, 2])
  assert.equal(second.id, first.id)
  assert.equal(second.body, first.body)
  assert.equal(second.timestamp, first.timestamp, 'timestamp must keep the original publish time')
  const waited = second.at - requeuedAt
  assert.ok(waited >= 1000, `REQ with 1000 ms delay came back after ${waited.toFixed(1)} ms`)
  await expectNothing(() => consumer.deliveries.length > 2, 500, 'delivery after FIN')
  assertNoErrors(consumer, producer)
})

nsqTest('REQ without delay redelivers immediately', 30000, async (ctx) => {
  const t = topic('req0')
  const consumer = ctx.consumer(t, 'ch', {}, (d) => {
    if (d.attempts === 1) d.msg.requeue(0, false)
    else d.msg.finish()
  })
  const producer = ctx.producer()
  await consumer.ready()
  await producer.ready()

  await producer.publish(t, 'again')
  // REQ 0 goes straight back to the queue, so no scanner wait is involved.
  await waitFor(() => consumer.deliveries.length >= 2, 3000, 'immediate redelivery after REQ 0')
  assert.deepEqual(
    consumer.deliveries.map((d) => d.attempts),
    [1, 2]
  )
  assert.equal(consumer.deliveries[0].id, consumer.deliveries[1].id)
  assertNoErrors(consumer, producer)
})

nsqTest('TOUCH keeps a message in flight past its timeout', 40000, async (ctx) => {
  const t = topic('touch')
  // "touched" is held and touched by the test; "control" is left to time out
  // once and finished when it comes back.
  const consumer = ctx.consumer(t, 'ch', {maxInFlight: 2, messageTimeout: 1000}, (d) => {
    if (d.body === 'control' && d.attempts > 1) d.msg.finish()
  })
  const producer = ctx.producer()
  await consumer.ready()
  await producer.ready()

  await producer.publish(t, ['touched', 'control'])
  await waitFor(() => consumer.deliveries.length >= 2, 5000, 'both messages')
  const touched = consumer.deliveries.find((d) => d.body === 'touched')

  // 250 ms is well inside the 1 s msg timeout, so every deadline is extended in time.
  const toucher = setInterval(() => touched.msg.touch(), 250)
  touched.msg.touch()
  const redelivered = (body) => consumer.deliveries.filter((d) => d.body === body && d.attempts > 1)
  try {
    // The untouched control message timing out proves the server is actively
    // expiring messages on this channel; only then is "no redelivery" meaningful.
    await waitFor(() => redelivered('control').length > 0, SCAN_WAIT, 'untouched control message to time out')
    await expectNothing(() => redelivered('touched').length > 0, 2500, 'touched message timed out despite TOUCH')
  } finally {
    clearInterval(toucher)
  }
  touched.msg.finish()
  await expectNothing(() => redelivered('touched').length > 0, 500, 'touched message redelivered after FIN')
  assert.equal(consumer.deliveries.filter((d) => d.body === 'touched').length, 1)
  assertNoErrors(consumer, producer)
})

nsqTest('unfinished message times out and comes back with attempts 2', 40000, async (ctx) => {
  const t = topic('timeout')
  // attempt 1 is never answered, so nsqd must expire it after the msg timeout
  const consumer = ctx.consumer(t, 'ch', {messageTimeout: 1000}, (d) => {
    if (d.attempts >= 2) d.msg.finish()
  })
  const producer = ctx.producer()
  await consumer.ready()
  await producer.ready()

  await producer.publish(t, 'slow consumer')
  await waitFor(() => consumer.deliveries.length >= 2, SCAN_WAIT, 'redelivery after msg timeout')

  const [first, second] = consumer.deliveries
  assert.deepEqual([first.attempts, second.attempts], [1, 2])
  assert.equal(first.id, second.id)
  assert.equal(first.body, second.body)
  const gap = second.at - first.at
  // 1000 ms timeout measured from the server's send; allow for delivery latency.
  assert.ok(gap >= 750, `message came back ${gap.toFixed(1)} ms after delivery, before its 1 s timeout`)
  await expectNothing(() => consumer.deliveries.length > 2, 1500, 'redelivery after FIN of attempt 2')
  assertNoErrors(consumer, producer)
})

nsqTest('consumers on one channel share the messages', 30000, async (ctx) => {
  const t = topic('shared')
  const n = 30
  const consumers = []
  const held = []
  const handlerFor = (index) => (d) => {
    if (consumers[1 - index].deliveries.length === 0) {
      // Hold until the other consumer gets something: this makes
      // "both consumers receive messages" deterministic.
      held.push(d)
      return
    }
    d.msg.finish()
    while (held.length) held.pop().msg.finish()
  }
  consumers.push(ctx.consumer(t, 'shared', {maxInFlight: 2}, handlerFor(0)))
  consumers.push(ctx.consumer(t, 'shared', {maxInFlight: 2}, handlerFor(1)))
  const producer = ctx.producer()
  for (const c of consumers) await c.ready()
  await producer.ready()

  const bodies = range(n, (i) => `s-${i}`)
  await producer.publish(t, bodies)
  const total = () => consumers.reduce((acc, c) => acc + c.deliveries.length, 0)
  await waitFor(() => total() >= n && held.length === 0, 10000, 'all messages across both consumers')
  await expectNothing(() => total() > n, 300, 'a message delivered twice')

  const got = consumers.flatMap((c) => c.bodies())
  assert.deepEqual([...got].sort(), [...bodies].sort(), 'each message must reach exactly one consumer')
  assert.ok(
    consumers.every((c) => c.deliveries.length > 0),
    `split ${consumers.map((c) => c.deliveries.length)}`
  )
  assert.ok(consumers.every((c) => c.deliveries.every((d) => d.attempts === 1)))
  assertNoErrors(producer, ...consumers)
})

nsqTest('every channel gets every message', 30000, async (ctx) => {
  const t = topic('fanout')
  const channels = ['alpha', 'beta', 'gamma']
  const consumers = Object.fromEntries(channels.map((ch) => [ch, ctx.consumer(t, ch, {maxInFlight: 5})]))
  const producer = ctx.producer()
  for (const c of Object.values(consumers)) await c.ready()
  await producer.ready()

  const bodies = range(10, (i) => `f-${i}`)
  await producer.publish(t, bodies)
  await producer.publish(t, 'f-single')
  bodies.push('f-single')

  for (const [ch, c] of Object.entries(consumers)) {
    await waitFor(() => c.deliveries.length >= bodies.length, 10000, `all messages on channel ${ch}`)
  }
  await expectNothing(
    () => Object.values(consumers).some((c) => c.deliveries.length > bodies.length),
    300,
    'duplicate on a channel'
  )

  const keyed = (c) => Object.fromEntries(c.deliveries.map((d) => [d.body, `${d.id}/${d.timestamp}`]))
  const reference = keyed(consumers.alpha)
  for (const [ch, c] of Object.entries(consumers)) {
    assert.deepEqual([...c.bodies()].sort(), [...bodies].sort(), `channel ${ch}`)
    // each channel gets a copy of the same message: same ID and timestamp
    assert.deepEqual(keyed(c), reference, `channel ${ch}`)
  }
  assertNoErrors(producer, ...Object.values(consumers))
})

nsqTest('maxInFlight 1 delivers one message at a time', 30000, async (ctx) => {
  const t = topic('rdy1')
  const n = 8
  const held = []
  const overlaps = []
  const consumer = ctx.consumer(t, 'ch', {maxInFlight: 1}, (d) => {
    if (held.length) overlaps.push(d.body)
    held.push(d)
  })
  const producer = ctx.producer()
  await consumer.ready()
  await producer.ready()

  await producer.publish(t, range(n, (i) => `one-${i}`))
  for (let step = 0; step < n; step++) {
    await waitFor(() => held.length > 0, 5000, `message ${step + 1} with RDY 1`)
    if (step < 3) {
      // With one message in flight and RDY 1 the server must not send another.
      await expectNothing(() => consumer.deliveries.length > step + 1, 300, 'second message while RDY 1 is used')
    }
    held.pop().msg.finish()
  }
  assert.deepEqual(overlaps, [], 'messages delivered beyond RDY 1')
  assert.deepEqual([...consumer.bodies()].sort(), range(n, (i) => `one-${i}`).sort())
  assertNoErrors(consumer, producer)
})

nsqTest('pause (RDY 0) stops delivery, unpause resumes, RDY window is honoured', 40000, async (ctx) => {
  const t = topic('rdy_change')
  let hold = false
  const held = []
  const consumer = ctx.consumer(t, 'ch', {maxInFlight: 3}, (d) => {
    if (hold) held.push(d)
    else d.msg.finish()
  })
  const producer = ctx.producer()
  await consumer.ready()
  await producer.ready()

  await producer.publish(t, range(5, (i) => `a-${i}`))
  await waitFor(() => consumer.deliveries.length >= 5, 5000, 'first batch')

  consumer.reader.pause() // RDY 0
  await consumer.barrier()
  await producer.publish(t, range(5, (i) => `b-${i}`))
  await expectNothing(() => consumer.deliveries.length > 5, 800, 'delivery while RDY 0')

  consumer.reader.unpause() // RDY 1, then back to RDY 3 after a FIN
  await waitFor(() => consumer.deliveries.length >= 10, 5000, 'second batch after unpause')

  hold = true
  await producer.publish(t, range(6, (i) => `c-${i}`))
  await waitFor(() => held.length >= 3, 5000, '3 messages in flight with RDY 3')
  await expectNothing(() => held.length > 3, 500, 'more than 3 messages in flight with RDY 3')
  hold = false
  while (held.length) held.pop().msg.finish()
  await waitFor(() => consumer.deliveries.length >= 16, 5000, 'rest of the third batch')

  const expected = [...range(5, (i) => `a-${i}`), ...range(5, (i) => `b-${i}`), ...range(6, (i) => `c-${i}`)]
  assert.deepEqual([...consumer.bodies()].sort(), expected.sort())
  assert.ok(consumer.deliveries.every((d) => d.attempts === 1))
  assertNoErrors(consumer, producer)
})

nsqTest('heartbeats keep an idle consumer connected', 30000, async (ctx) => {
  const t = topic('heartbeat')
  // nsqjs answers each _heartbeat_ with NOP; nsqd must keep sending them at
  // the negotiated 1 s interval and must not drop a connection that answers.
  const consumer = ctx.consumer(t, 'ch', {heartbeatInterval: 1})
  const producer = ctx.producer()
  await consumer.ready()
  await producer.ready()

  const heartbeats = consumer.tapHeartbeats()
  const started = performance.now()
  await waitFor(() => heartbeats() >= 3, 6000, '3 heartbeats at a 1 s interval')
  const elapsed = performance.now() - started
  assert.ok(elapsed >= 1500, `3 heartbeats within ${elapsed.toFixed(0)} ms: interval not honoured`)
  assert.equal(consumer.closedConns, 0, 'idle consumer was disconnected')

  await producer.publish(t, 'still there')
  await waitFor(() => consumer.deliveries.length > 0, 3000, 'delivery on the long-idle connection')
  assert.equal(consumer.closedConns, 0)
  assertNoErrors(consumer, producer)
})
