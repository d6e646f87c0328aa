// MQTT.js over ws:// (or wss://), driven by tests/Conformance/Security/BrowserAndNodeInteropTests.cs.
// Usage: node websocket.js <url> <protocol level 4|5> <username> <password> <client id>
// Connects, subscribes to "js/<client id>", publishes a QoS 1 message there, and prints one JSON line when it comes
// back: {"ok":true,"topic":...,"payload":...} or {"ok":false,"error":...}. Exits on its own after a bound.
'use strict';

const mqtt = require('mqtt');

const [url, level, username, password, clientId] = process.argv.slice(2);
const topic = `js/${clientId}`;
let received = false;

function finish(result) {
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exit(result.ok ? 0 : 1);
}

setTimeout(() => finish({ ok: false, error: 'no round trip within 20 s' }), 20_000).unref();

const client = mqtt.connect(url, {
  protocolVersion: Number(level),
  username: username || undefined,
  password: password || undefined,
  clientId,
  reconnectPeriod: 0,
  connectTimeout: 10_000,
});
client.on('connect', () => {
  client.subscribe(topic, { qos: 1 }, (err, granted) => {
    if (err || !granted || granted[0].qos > 2) {
      finish({ ok: false, error: `subscribe failed: ${err || JSON.stringify(granted)}` });
      return;
    }
    client.publish(topic, `hello from node ${process.version}`, { qos: 1 });
  });
});
client.on('message', (t, payload) => {
  received = true;
  client.end(false, () => finish({ ok: true, topic: t, payload: payload.toString() }));
});
client.on('error', (err) => finish({ ok: false, error: String(err && err.message ? err.message : err) }));
client.on('close', () => {
  if (!received) {
    finish({ ok: false, error: 'closed by the broker' });
  }
});
