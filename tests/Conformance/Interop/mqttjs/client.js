// MQTT.js driven by tests/Conformance/Interop (InteropClient.cs) over stdin/stdout, one JSON object per line.
// The same command set is implemented by ../paho/client.py, so each interop scenario is written once in C#.
//
// Usage: node client.js <port> <protocol level 4|5>
// Commands (stdin):  {"seq":1,"op":"connect","client":"a","clientId":"x","clean":true,"keepalive":60,
//                     "sessionExpiry":300,"will":{"topic":"t","payload":"<base64>","qos":1,"retain":false}}
//                    {"seq":2,"op":"subscribe","client":"a","filter":"t/#","qos":1}
//                    {"seq":3,"op":"publish","client":"a","topic":"t","payload":"<base64>","qos":1,"retain":false,
//                     "properties":{"responseTopic":"r","correlationData":"<base64>","userProperties":[["k","v"]],"messageExpiry":60}}
//                    {"seq":4,"op":"disconnect","client":"a"}
// Events (stdout):   {"event":"ok","seq":1,"sessionPresent":false} | {"event":"error","seq":1,"message":"..."}
//                    {"event":"message","client":"a","topic":"t","payload":"<base64>","qos":1,"retain":false,"properties":{...}}
//                    {"event":"closed","client":"a"}
// The process exits when stdin closes, and on its own after a bound so that it can never outlive a test run.
'use strict';

const mqtt = require('mqtt');
const readline = require('readline');

const port = Number(process.argv[2]);
const protocolVersion = Number(process.argv[3]);
const clients = new Map();

setTimeout(() => process.exit(3), 120_000).unref();

function emit(event) {
  process.stdout.write(JSON.stringify(event) + '\n');
}

function buffer(b64) {
  return Buffer.from(b64 || '', 'base64');
}

function messageProperties(p) {
  if (!p) {
    return undefined;
  }
  const userProperties = [];
  for (const [key, value] of Object.entries(p.userProperties || {})) {
    for (const v of Array.isArray(value) ? value : [value]) {
      userProperties.push([key, String(v)]);
    }
  }
  return {
    responseTopic: p.responseTopic,
    correlationData: p.correlationData ? Buffer.from(p.correlationData).toString('base64') : undefined,
    userProperties,
    messageExpiry: p.messageExpiryInterval,
  };
}

function connect(cmd) {
  return new Promise((resolve, reject) => {
    const options = {
      host: '127.0.0.1',
      port,
      protocolVersion,
      clientId: cmd.clientId,
      clean: cmd.clean,
      keepalive: cmd.keepalive,
      reconnectPeriod: 0,
      connectTimeout: 10_000,
    };
    if (protocolVersion === 5 && cmd.sessionExpiry !== undefined) {
      options.properties = { sessionExpiryInterval: cmd.sessionExpiry };
    }
    if (cmd.will) {
      options.will = { topic: cmd.will.topic, payload: buffer(cmd.will.payload), qos: cmd.will.qos, retain: cmd.will.retain };
    }
    const client = mqtt.connect(options);
    let connected = false;
    client.on('connect', (connack) => {
      connected = true;
      clients.set(cmd.client, client);
      resolve({ sessionPresent: !!connack.sessionPresent });
    });
    client.on('message', (topic, payload, packet) => {
      emit({
        event: 'message', client: cmd.client, topic, payload: payload.toString('base64'),
        qos: packet.qos, retain: !!packet.retain, properties: messageProperties(packet.properties),
      });
    });
    client.on('close', () => {
      if (connected) {
        emit({ event: 'closed', client: cmd.client });
        connected = false;
      }
    });
    client.on('error', (err) => {
      if (!connected) {
        reject(err);
      }
    });
  });
}

function subscribe(cmd) {
  return new Promise((resolve, reject) => {
    clients.get(cmd.client).subscribe(cmd.filter, { qos: cmd.qos }, (err, granted) => {
      if (err) {
        reject(err);
      } else {
        resolve({ granted: granted.map((g) => g.qos) });
      }
    });
  });
}

function publish(cmd) {
  return new Promise((resolve, reject) => {
    const options = { qos: cmd.qos, retain: !!cmd.retain };
    const p = cmd.properties;
    if (p) {
      options.properties = {};
      if (p.responseTopic) options.properties.responseTopic = p.responseTopic;
      if (p.correlationData) options.properties.correlationData = buffer(p.correlationData);
      if (p.messageExpiry !== undefined) options.properties.messageExpiryInterval = p.messageExpiry;
      if (p.userProperties) {
        // MQTT.js takes an object: keys keep their order, repeated keys become arrays.
        const up = {};
        for (const [key, value] of p.userProperties) {
          if (key in up) {
            up[key] = [].concat(up[key], value);
          } else {
            up[key] = value;
          }
        }
        options.properties.userProperties = up;
      }
    }
    // Resolves once the exchange for its QoS is complete (PUBACK / PUBCOMP, or written for QoS 0).
    clients.get(cmd.client).publish(cmd.topic, buffer(cmd.payload), options, (err) => (err ? reject(err) : resolve({})));
  });
}

function disconnect(cmd) {
  return new Promise((resolve) => {
    const client = clients.get(cmd.client);
    clients.delete(cmd.client);
    client.end(false, {}, () => resolve({}));
  });
}

const operations = { connect, subscribe, publish, disconnect };

async function run() {
  const lines = readline.createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (!line.trim()) {
      continue;
    }
    const cmd = JSON.parse(line);
    try {
      const result = await operations[cmd.op](cmd);
      emit({ event: 'ok', seq: cmd.seq, ...result });
    } catch (err) {
      emit({ event: 'error', seq: cmd.seq, message: String(err && err.message ? err.message : err) });
    }
  }
  for (const client of clients.values()) {
    client.end(true);
  }
  process.exit(0);
}

run();
