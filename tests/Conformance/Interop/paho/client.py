"""paho-mqtt (Debian's python3-paho-mqtt) driven by tests/Conformance/Interop (InteropClient.cs) over stdin/stdout.

One JSON object per line, the same commands and events as ../mqttjs/client.js (see there). Works with paho-mqtt 1.6
(Debian 12) and 2.x (callback API version 2). Run with /usr/bin/python3, where Debian installs the package.

Usage: /usr/bin/python3 client.py <port> <protocol level 4|5>
"""
import base64
import json
import sys
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

PORT = int(sys.argv[1])
LEVEL = int(sys.argv[2])
V5 = LEVEL == 5
PAHO2 = hasattr(mqtt, "CallbackAPIVersion")
TIMEOUT = 10.0

_out = threading.Lock()
clients = {}

# Never outlive a test run.
_bound = threading.Timer(120.0, lambda: __import__("os")._exit(3))
_bound.daemon = True
_bound.start()


def emit(event):
    line = json.dumps(event)
    with _out:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def b64(data):
    return base64.b64encode(bytes(data or b"")).decode("ascii")


def unb64(text):
    return base64.b64decode(text or "")


def message_properties(props):
    if props is None:
        return None
    result = {"userProperties": [[k, v] for k, v in getattr(props, "UserProperty", [])]}
    if hasattr(props, "ResponseTopic"):
        result["responseTopic"] = props.ResponseTopic
    if hasattr(props, "CorrelationData"):
        result["correlationData"] = b64(props.CorrelationData)
    if hasattr(props, "MessageExpiryInterval"):
        result["messageExpiry"] = props.MessageExpiryInterval
    return result


class Connection:
    """One paho client; acknowledgements are matched by mid, whichever comes first (the call or the callback)."""

    def __init__(self, name, cmd):
        self.name = name
        self.cond = threading.Condition()
        self.connack = None
        self.done_mids = set()
        self.open = False
        kwargs = {"client_id": cmd["clientId"], "protocol": mqtt.MQTTv5 if V5 else mqtt.MQTTv311}
        if not V5:
            kwargs["clean_session"] = cmd["clean"]
        if PAHO2:
            kwargs["callback_api_version"] = mqtt.CallbackAPIVersion.VERSION2
        self.client = mqtt.Client(**kwargs)
        # The broker closing the connection must be seen by the test, not hidden by an automatic reconnect.
        self.client.reconnect_delay_set(min_delay=3600, max_delay=3600)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_ack
        self.client.on_publish = self._on_ack
        will = cmd.get("will")
        if will:
            self.client.will_set(will["topic"], unb64(will["payload"]), will["qos"], will["retain"])

    def _on_connect(self, client, userdata, flags, rc, properties=None):
        present = flags.session_present if hasattr(flags, "session_present") else flags.get("session present", 0)
        with self.cond:
            self.connack = (int(getattr(rc, "value", rc)), bool(present))
            self.open = True
            self.cond.notify_all()

    def _on_message(self, client, userdata, msg):
        emit({
            "event": "message", "client": self.name, "topic": msg.topic, "payload": b64(msg.payload),
            "qos": msg.qos, "retain": bool(msg.retain),
            "properties": message_properties(getattr(msg, "properties", None)) if V5 else None,
        })

    def _on_disconnect(self, client, userdata, *args):
        with self.cond:
            was_open, self.open = self.open, False
        if was_open:
            emit({"event": "closed", "client": self.name})

    def _on_ack(self, client, userdata, mid, *args):
        with self.cond:
            self.done_mids.add(mid)
            self.cond.notify_all()

    def wait_for(self, predicate, what):
        with self.cond:
            if not self.cond.wait_for(predicate, TIMEOUT):
                raise TimeoutError(what)

    def connect(self, cmd):
        kwargs = {}
        if V5:
            kwargs["clean_start"] = cmd["clean"]
            if cmd.get("sessionExpiry") is not None:
                props = Properties(PacketTypes.CONNECT)
                props.SessionExpiryInterval = cmd["sessionExpiry"]
                kwargs["properties"] = props
        self.client.connect("127.0.0.1", PORT, cmd["keepalive"], **kwargs)
        self.client.loop_start()
        self.wait_for(lambda: self.connack is not None, "no CONNACK")
        code, present = self.connack
        if code != 0:
            raise RuntimeError("CONNACK %d" % code)
        return {"sessionPresent": present}

    def wait_mid(self, mid, what):
        self.wait_for(lambda: mid in self.done_mids, what)

    def subscribe(self, cmd):
        rc, mid = self.client.subscribe(cmd["filter"], cmd["qos"])
        if rc != 0:
            raise RuntimeError("subscribe rc %d" % rc)
        self.wait_mid(mid, "no SUBACK")
        return {}

    def publish(self, cmd):
        props = None
        p = cmd.get("properties")
        if V5 and p:
            props = Properties(PacketTypes.PUBLISH)
            if p.get("responseTopic"):
                props.ResponseTopic = p["responseTopic"]
            if p.get("correlationData"):
                props.CorrelationData = unb64(p["correlationData"])
            if p.get("messageExpiry") is not None:
                props.MessageExpiryInterval = p["messageExpiry"]
            for key, value in p.get("userProperties") or []:
                props.UserProperty = (key, value)
        info = self.client.publish(cmd["topic"], unb64(cmd["payload"]), cmd["qos"], cmd.get("retain", False), properties=props)
        # Complete when the exchange for its QoS is (PUBACK / PUBCOMP, or written for QoS 0).
        self.wait_mid(info.mid, "publish not acknowledged")
        return {}

    def disconnect(self, cmd):
        self.client.disconnect()
        self.client.loop_stop()
        return {}


def run():
    for line in sys.stdin:
        if not line.strip():
            continue
        cmd = json.loads(line)
        try:
            name = cmd["client"]
            if cmd["op"] == "connect":
                clients[name] = Connection(name, cmd)
            result = getattr(clients[name], cmd["op"])(cmd)
            if cmd["op"] == "disconnect":
                del clients[name]
            emit(dict({"event": "ok", "seq": cmd["seq"]}, **result))
        except Exception as err:  # reported to the test, which fails with the message
            emit({"event": "error", "seq": cmd["seq"], "message": "%s: %s" % (type(err).__name__, err)})
    for connection in list(clients.values()):
        connection.client.disconnect()
    __import__("os")._exit(0)


run()
