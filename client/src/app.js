// Browser client of the reference bot (run.py serves it at /client/).
//
// Pipecat's JS client over SmallWebRTC, with a microphone manager of its own:
// the transport's default one is Daily's, which downloads Daily's call-object
// bundle (and Sentry) from the internet when it starts. This page loads nothing
// but itself, so it works offline.
//
// Shows the transcript (the user's words, the bot's words, backchannels), whether
// the bot is speaking with its audio level, and the soft-ack filter's decisions
// (RTVI server messages of type "softack-decision", sent by bot/decision_panel.py).
//
// URL options: ?mic=0 connects with the microphone off (turn it on with the mic
// button). window.softack exposes the client and a log of every RTVI message,
// for tests and for the curious.

import { PipecatClient } from "@pipecat-ai/client-js";
import { SmallWebRTCTransport } from "@pipecat-ai/small-webrtc-transport";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const now = () => performance.now();

// What tests read: every RTVI message with its arrival time (ms, performance.now()),
// bot audio levels [[t, rms]], and when the microphone started capturing.
const state = { log: [], levels: [], micStartedAt: null, errors: [] };
window.softack = state;

/** A microphone manager with getUserMedia and nothing else (no Daily bundle). */
class LocalMediaManager {
  constructor() {
    this._options = undefined;
    this._callbacks = {};
    this._micEnabled = true;
    this._track = null;
    this._transport = null;
  }
  setTransport(transport) { this._transport = transport; }
  setUserAudioCallback() {}
  setClientOptions(options, override = false) {
    if (this._options && !override) return;
    this._options = options;
    this._callbacks = options.callbacks ?? {};
    this._micEnabled = options.enableMic ?? true;
  }
  async initialize() {}
  async connect() {
    if (this._micEnabled && !this._track) await this._acquire();
  }
  async disconnect() {
    this._track?.stop();
    this._track = null;
  }
  async _acquire(deviceId) {
    const audio = {
      echoCancellation: true, noiseSuppression: true, autoGainControl: true,
      ...(deviceId ? { deviceId: { exact: deviceId } } : {}),
    };
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ audio });
      this._track?.stop();
      this._track = stream.getAudioTracks()[0];
      this._track.enabled = this._micEnabled;
      state.micStartedAt = now();
      // Replace the track of the peer connection's audio sender, if connected.
      const sender = this._transport?.pc?.getTransceivers()[0]?.sender;
      if (sender) await sender.replaceTrack(this._track);
      this._callbacks.onMicUpdated?.(this.selectedMic);
    } catch (error) {
      state.errors.push(`microphone: ${error}`);
      this._callbacks.onDeviceError?.({ type: "unknown", devices: ["mic"], details: error });
      throw error;
    }
  }
  async userStartedSpeaking() {}
  bufferBotAudio() { return undefined; }
  async getAllMics() {
    return (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === "audioinput");
  }
  async getAllCams() { return []; }
  async getAllSpeakers() { return []; }
  async updateMic(micId) { await this._acquire(micId); }
  updateCam() {}
  updateSpeaker() {}
  get selectedMic() {
    const s = this._track?.getSettings?.();
    return s ? { deviceId: s.deviceId, label: this._track.label, kind: "audioinput", groupId: s.groupId ?? "" } : {};
  }
  get selectedCam() { return {}; }
  get selectedSpeaker() { return {}; }
  async enableMic(enable) {
    this._micEnabled = enable;
    if (enable && !this._track) await this._acquire();
    if (this._track) this._track.enabled = enable;
  }
  enableCam() {}
  enableScreenShare() {}
  get isCamEnabled() { return false; }
  get isMicEnabled() { return this._micEnabled; }
  get isSharingScreen() { return false; }
  get supportsScreenShare() { return false; }
  tracks() { return { local: { audio: this._track ?? undefined } }; }
}

/** The SmallWebRTC transport, logging every RTVI message it receives. */
class LoggingTransport extends SmallWebRTCTransport {
  handleMessage(message) {
    try {
      const msg = JSON.parse(message);
      if (msg.label === "rtvi-ai") onRtviMessage(msg);
    } catch (error) {
      state.errors.push(`message: ${error}`);
    }
    super.handleMessage(message);
  }
}

// ---------------------------------------------------------------- transcript

const transcript = $("transcript");
let botLine = null; // the bot's current line
let interimLine = null; // the user's words being heard

function addLine(cls, who, text) {
  const li = document.createElement("li");
  li.className = cls;
  const w = document.createElement("span");
  w.className = "who";
  w.textContent = who;
  const t = document.createElement("span");
  t.className = "text";
  t.textContent = text;
  li.append(w, t);
  transcript.append(li);
  li.scrollIntoView({ block: "nearest" });
  return li;
}

const norm = (s) => s.toLowerCase().replace(/[^a-z0-9 ]/g, "").trim();

function onUserInput(data) {
  if (data.input_type === "backchannel") {
    // The STT's transcript of it was shown already: mark that line instead.
    const lines = [...transcript.querySelectorAll("li.user")].reverse();
    const same = lines.find((li) => norm(li.querySelector(".text").textContent) === norm(data.text));
    const li = same ?? interimLine ?? addLine("user", "You", data.text);
    li.className = "user backchannel";
    li.querySelector(".text").textContent = `${data.text} (backchannel: the bot kept talking)`;
    if (li === interimLine) interimLine = null;
    return;
  }
  if (!data.final) {
    if (!interimLine) interimLine = addLine("user interim", "You", "");
    interimLine.querySelector(".text").textContent = data.text;
    return;
  }
  const li = interimLine ?? addLine("user", "You", "");
  li.className = "user";
  li.querySelector(".text").textContent = data.text;
  interimLine = null;
  if (!botSpeaking) botLine = null; // words said over the bot go below its line
}

function onBotText(text) {
  if (!botLine) botLine = addLine("bot", "Bot", "");
  const t = botLine.querySelector(".text");
  t.textContent = (t.textContent + " " + text).replace(/\s+/g, " ").trim();
}

// ----------------------------------------------------------------- decisions

const decisions = $("decisions");
const KIND_LABEL = {
  backchannel: "backchannel ignored",
  interruption: "interruption released",
  noise: "noise dropped",
  echo: "echo dropped",
  discarded: "speech discarded",
};

function onDecision(d) {
  const li = document.createElement("li");
  li.className = d.kind;
  const kind = document.createElement("span");
  kind.className = "kind";
  kind.textContent = KIND_LABEL[d.kind] ?? d.kind;
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = d.text ? ` "${d.text}"` : "";
  const meta = document.createElement("span");
  meta.className = "meta";
  const after = d.after_speech_stop_secs == null ? "" : `, ${fmt(d.after_speech_stop_secs)} after the speech stopped`;
  meta.textContent = `decided in ${fmt(d.held_secs)} (${d.reason}${after})`;
  li.append(kind, text, meta);
  decisions.prepend(li);
}

const fmt = (secs) => (secs < 1 ? `${Math.round(secs * 1000)} ms` : `${secs.toFixed(2)} s`);

// ------------------------------------------------------------- RTVI messages

let botSpeaking = false;

function setBotSpeaking(speaking) {
  botSpeaking = speaking;
  const el = $("bot-state");
  el.dataset.speaking = String(speaking);
  el.textContent = speaking ? "bot: speaking" : "bot: listening";
}

function onRtviMessage(msg) {
  state.log.push({ t: now(), type: msg.type, data: msg.data });
  const data = msg.data ?? {};
  switch (msg.type) {
    case "bot-started-speaking":
      setBotSpeaking(true);
      botLine ??= addLine("bot", "Bot", ""); // its words come as they are spoken
      break;
    case "bot-stopped-speaking": setBotSpeaking(false); break;
    case "bot-interrupted":
      // Also sent when a user turn starts while the bot is silent: only a cut if speaking.
      if (botSpeaking) botLine?.classList.add("cut");
      botLine = null;
      break;
    case "user-input": onUserInput(data); break;
    case "bot-tts-text": onBotText(data.text ?? ""); break;
    case "server-message": if (data.type === "softack-decision") onDecision(data); break;
  }
}

// --------------------------------------------------------------- bot audio

let audioContext = null;

function onBotTrack(track) {
  if (track.kind !== "audio") return;
  const stream = new MediaStream([track]);
  const el = $("bot-audio");
  el.srcObject = stream;
  el.play().catch((e) => state.errors.push(`autoplay: ${e}`));
  audioContext ??= new AudioContext();
  audioContext.resume();
  const analyser = audioContext.createAnalyser();
  analyser.fftSize = 1024;
  audioContext.createMediaStreamSource(stream).connect(analyser);
  const buf = new Float32Array(analyser.fftSize);
  const meter = $("bot-level");
  const sample = () => {
    if (track.readyState === "ended") return;
    analyser.getFloatTimeDomainData(buf);
    let sum = 0;
    for (const v of buf) sum += v * v;
    const rms = Math.sqrt(sum / buf.length);
    state.levels.push([now(), rms]);
    if (state.levels.length > 20000) state.levels.splice(0, 10000);
    meter.style.width = `${Math.min(100, rms * 400)}%`;
  };
  setInterval(sample, 50);
}

// ------------------------------------------------------------------ client

const mediaManager = new LocalMediaManager();
const transport = new LoggingTransport({ mediaManager, iceServers: [] });
mediaManager.setTransport(transport);

const client = new PipecatClient({
  transport,
  enableMic: params.get("mic") !== "0",
  enableCam: false,
  callbacks: {
    onTransportStateChanged: (s) => {
      const el = $("status");
      el.textContent = s;
      el.dataset.state = s;
      const live = !["disconnected", "error", "initialized", "initializing"].includes(s);
      $("connect").textContent = live ? "Disconnect" : "Connect";
      $("mic").disabled = !live;
      if (s === "disconnected") setBotSpeaking(false);
    },
    onTrackStarted: (track, participant) => {
      if (!participant?.local) onBotTrack(track);
    },
    onError: (m) => state.errors.push(`rtvi: ${JSON.stringify(m?.data ?? m)}`),
  },
});
state.client = client;
setBotSpeaking(false);

function updateMicButton() {
  $("mic").textContent = client.isMicEnabled ? "Mute mic" : "Unmute mic";
}

$("connect").addEventListener("click", async () => {
  if (!["disconnected", "error", "initialized"].includes(client.state)) {
    await client.disconnect();
    return;
  }
  audioContext ??= new AudioContext(); // created on a click, so it may play
  try {
    await client.connect({ webrtcRequestParams: { endpoint: "/api/offer" } });
  } catch (error) {
    state.errors.push(`connect: ${error}`);
    $("status").textContent = `error: ${error?.message ?? error}`;
    $("status").dataset.state = "error";
  }
  updateMicButton();
});

$("mic").addEventListener("click", () => {
  client.enableMic(!client.isMicEnabled);
  updateMicButton();
});
