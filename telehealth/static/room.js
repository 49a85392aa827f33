// The built-in video room: a 1:1 WebRTC call with plain browser APIs. Signalling goes over the room's
// WebSocket (telehealth/scheduling/video_room.py); media goes browser to browser, or through the clinic's TURN.
// The clinician's browser makes every offer; the patient's answers. Messages are handled one at a time.
(() => {
  "use strict";
  const root = document.getElementById("video-room");
  if (!root) return;
  const $ = (id) => document.getElementById(id);
  const statusLine = $("room-status"), selfView = $("self-view"), remoteView = $("remote-video");
  const checkButton = $("check-devices"), joinButton = $("join"), micButton = $("toggle-mic"), cameraButton = $("toggle-camera");
  const CLOSE_WORDS = {
    4401: "You are signed out. Sign in again, then come back to this page.",
    4403: "This room is not open to you right now.",
    4404: "This visit's room no longer exists. It may have been cancelled or moved.",
    4409: "You joined this visit from another window or device; this one has left.",
    4410: "The visit's time is over and the room has closed.",
    4400: "Something went wrong with the connection. Reload the page to rejoin.",
    1003: "Something went wrong with the connection. Reload the page to rejoin.",
    1009: "Something went wrong with the connection. Reload the page to rejoin.",
  };

  let local = null, socket = null, pc = null, participant = null, iceServers = [], refusal = null;
  let leaving = false, attempts = 0, pendingCandidates = [], queue = Promise.resolve();
  window.videoRoom = { get pc() { return pc; } }; // read by the browser tests (getStats), never by the page

  const say = (words) => { statusLine.textContent = words; };

  function explainMediaError(error) {
    switch (error && error.name) {
      case "NotAllowedError":
      case "SecurityError":
        return "Your browser blocked the camera or microphone. Allow both for this site (the camera icon in the address bar), then press Check again.";
      case "NotFoundError":
      case "OverconstrainedError":
        return "No camera or microphone was found. Connect one (or use a phone), then press Check again.";
      case "NotReadableError":
      case "AbortError":
        return "Your camera or microphone is in use by another app. Close it, then press Check again.";
      default:
        return "The camera or microphone could not start. Press Check again, or try another browser.";
    }
  }

  async function checkDevices() {
    if (!navigator.mediaDevices || !window.RTCPeerConnection) {
      say("This browser cannot make video calls here. Use a current Chrome, Firefox, Safari or Edge.");
      return;
    }
    try {
      if (local) local.getTracks().forEach((track) => track.stop());
      local = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: { ideal: 640 }, height: { ideal: 480 } } });
      selfView.srcObject = local;
      joinButton.disabled = false;
      say("Your camera and microphone work. Join when you are ready.");
    } catch (error) {
      local = null;
      joinButton.disabled = true;
      say(explainMediaError(error));
    }
  }

  function send(message) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + root.dataset.signalPath);
    socket.onopen = () => { attempts = 0; };
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      queue = queue.then(() => handle(message)).catch(() => say("The call hit a problem. Leave and rejoin if the picture does not come back."));
    };
    socket.onclose = (event) => {
      socket = null;
      if (leaving) return;
      const final = CLOSE_WORDS[event.code];
      if (final) {
        say(refusal || final);
        endCall();
        return;
      }
      attempts += 1;
      say("The connection dropped. Reconnecting…");
      setTimeout(connect, Math.min(1000 * 2 ** attempts, 10000));
    };
  }

  async function handle(message) {
    switch (message.type) {
      case "welcome":
        participant = message.participant;
        iceServers = message.ice_servers || [];
        say("You are in the room. Waiting for the other person to join…");
        break;
      case "refused":
        refusal = message.message;
        break;
      case "peer-joined":
        say("The other person is here. Connecting…");
        await startPeerConnection();
        break;
      case "peer-left":
        say("The other person left the room. They can rejoin until the room closes.");
        closePeerConnection();
        break;
      case "signal":
        await onSignal(message);
        break;
    }
  }

  function closePeerConnection() {
    if (pc) { pc.ontrack = pc.onicecandidate = pc.onconnectionstatechange = null; pc.close(); }
    pc = null;
    pendingCandidates = [];
    remoteView.srcObject = null;
  }

  function newPeerConnection() {
    closePeerConnection();
    pc = new RTCPeerConnection({ iceServers });
    local.getTracks().forEach((track) => pc.addTrack(track, local));
    pc.ontrack = (event) => { if (remoteView.srcObject !== event.streams[0]) remoteView.srcObject = event.streams[0]; };
    pc.onicecandidate = (event) => { if (event.candidate) send({ type: "signal", candidate: event.candidate.toJSON() }); };
    pc.onconnectionstatechange = () => {
      if (!pc) return;
      if (pc.connectionState === "connected") say("Connected. You can see and hear each other.");
      if (pc.connectionState === "disconnected") say("The connection is unsteady. Hold on…");
      if (pc.connectionState === "failed") {
        say("The connection was lost. Reconnecting…");
        if (participant === "clinician") offer({ iceRestart: true });
      }
    };
  }

  async function startPeerConnection() {
    newPeerConnection();
    if (participant === "clinician") await offer();
  }

  async function offer(options) {
    const description = await pc.createOffer(options);
    await pc.setLocalDescription(description);
    send({ type: "signal", description: { type: description.type, sdp: description.sdp } });
  }

  async function onSignal(message) {
    if (message.description) {
      if (message.description.type === "offer") {
        if (!pc) newPeerConnection();
        await pc.setRemoteDescription(message.description);
        const answer = await pc.createAnswer();
        await pc.setLocalDescription(answer);
        send({ type: "signal", description: { type: answer.type, sdp: answer.sdp } });
      } else if (pc && message.description.type === "answer") {
        await pc.setRemoteDescription(message.description);
      }
      for (const candidate of pendingCandidates.splice(0)) await pc.addIceCandidate(candidate).catch(() => {});
    } else if (message.candidate && pc) {
      if (pc.remoteDescription) await pc.addIceCandidate(message.candidate).catch(() => {});
      else pendingCandidates.push(message.candidate);
    }
  }

  function join() {
    leaving = false;
    refusal = null;
    $("before-join").hidden = true;
    $("in-call").hidden = false;
    say("Joining…");
    connect();
  }

  function endCall() {
    closePeerConnection();
    $("in-call").hidden = true;
    $("before-join").hidden = false;
    joinButton.textContent = "Rejoin the visit";
  }

  function leave() {
    leaving = true;
    send({ type: "leave" });
    if (socket) socket.close(1000);
    endCall();
    say("You left the visit. You can rejoin until the room closes.");
  }

  function toggle(kind, button, onWords, offWords) {
    if (!local) return;
    const tracks = kind === "audio" ? local.getAudioTracks() : local.getVideoTracks();
    const off = tracks.some((track) => track.enabled);
    tracks.forEach((track) => { track.enabled = !off; });
    button.setAttribute("aria-pressed", String(off));
    button.textContent = off ? offWords : onWords;
  }

  checkButton.addEventListener("click", checkDevices);
  joinButton.addEventListener("click", join);
  $("leave").addEventListener("click", leave);
  micButton.addEventListener("click", () => toggle("audio", micButton, "Mute microphone", "Unmute microphone"));
  cameraButton.addEventListener("click", () => toggle("video", cameraButton, "Turn camera off", "Turn camera on"));
  window.addEventListener("pagehide", () => { if (socket) { leaving = true; send({ type: "leave" }); socket.close(1000); } });
})();
