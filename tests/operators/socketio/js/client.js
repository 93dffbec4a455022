// socket.io-client v4, unmodified, against /ws/cases. Driven by tests/operators/socketio/clients.py:
// config as JSON in argv[2]; commands as JSON lines on stdin; everything seen as JSON lines on stdout.
"use strict";

const readline = require("readline");
const { io } = require("socket.io-client");

const config = JSON.parse(process.argv[2]);
const out = (message) => process.stdout.write(JSON.stringify(message) + "\n");

const socket = io(config.url, {
  path: "/ws/cases",
  auth: { token: config.token },
  transports: ["websocket"],
  reconnectionDelay: config.reconnectionDelay ?? 200,
  reconnectionDelayMax: config.reconnectionDelayMax ?? 500,
});

socket.on("connect", () => out({ type: "connect", id: socket.id, recovered: socket.recovered, pid: socket._pid ?? null }));
socket.on("connect_error", (error) =>
  out({ type: "connect_error", message: error.message, data: error.data ?? null, active: socket.active }),
);
socket.on("disconnect", (reason) => out({ type: "disconnect", reason, active: socket.active }));
socket.onAny((event, ...args) => out({ type: "event", event, args }));
socket.io.on("reconnect_attempt", (attempt) => out({ type: "reconnect_attempt", attempt }));

const commands = readline.createInterface({ input: process.stdin });
commands.on("line", (line) => {
  const command = JSON.parse(line);
  switch (command.op) {
    case "subscribe":
      socket.emit("subscribe", { caseUrn: command.caseUrn }, (ack) =>
        out({ type: "ack", op: "subscribe", caseUrn: command.caseUrn, ack }),
      );
      break;
    case "drop": // drop the transport only: the manager reconnects and recovers the session
      socket.io.engine.close();
      break;
    case "state":
      out({ type: "state", connected: socket.connected, active: socket.active, offset: socket._lastOffset ?? null });
      break;
    case "exit":
      socket.disconnect();
      process.exit(0);
      break;
    default:
      out({ type: "unknown_command", op: command.op });
  }
});
commands.on("close", () => process.exit(0));
