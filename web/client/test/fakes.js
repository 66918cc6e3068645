// Test doubles: a manual clock and an in-memory WebSocket.

/** FakeClock runs timers only when advanced. */
export class FakeClock {
  constructor() {
    this.now = 0;
    this.timers = new Map();
    this.next = 1;
  }

  setTimeout = (fn, ms) => {
    const id = this.next++;
    this.timers.set(id, { at: this.now + Math.max(0, ms), fn });
    return id;
  };

  clearTimeout = (id) => {
    this.timers.delete(id);
  };

  /** pending returns the delays of the scheduled timers, soonest first. */
  pending() {
    return [...this.timers.values()].map((t) => t.at - this.now).sort((a, b) => a - b);
  }

  /** advance moves time forward, firing due timers in order. */
  advance(ms) {
    const end = this.now + ms;
    for (;;) {
      let due = null;
      for (const [id, t] of this.timers) if (t.at <= end && (!due || t.at < due[1].at)) due = [id, t];
      if (!due) break;
      this.timers.delete(due[0]);
      this.now = due[1].at;
      due[1].fn();
    }
    this.now = end;
  }
}

/** makeFakeWebSocket returns a WebSocket class recording its instances. */
export function makeFakeWebSocket() {
  class FakeWebSocket {
    static instances = [];
    static get last() {
      return FakeWebSocket.instances[FakeWebSocket.instances.length - 1];
    }

    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.sent = [];
      this.closedByClient = false;
      FakeWebSocket.instances.push(this);
    }

    send(data) {
      if (this.readyState !== 1) throw new Error('send on a socket that is not open');
      this.sent.push(data);
    }

    /** messages returns the sent messages decoded. */
    messages() {
      return this.sent.map((s) => JSON.parse(s));
    }

    close() {
      this.closedByClient = true;
      this.readyState = 3;
    }

    // Server side:
    open() {
      this.readyState = 1;
      this.onopen?.({});
    }

    receive(msg) {
      this.onmessage?.({ data: typeof msg === 'string' ? msg : JSON.stringify(msg) });
    }

    drop() {
      this.readyState = 3;
      this.onclose?.({ code: 1006 });
    }
  }
  return FakeWebSocket;
}

/** update builds a server update message. */
export function update(seq, type, id, patient, action = 'created') {
  return {
    type: 'update',
    seq,
    timestamp: '2025-01-01T00:00:00Z',
    data: {
      action,
      resource_type: type,
      resource_id: id,
      patient_id: patient,
      resource: action === 'deleted' ? null : { resourceType: type, id },
    },
  };
}
