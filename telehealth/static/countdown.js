// Turns each <time data-countdown datetime="..."> into minutes and seconds left (the text it replaces is the end time).
(function () {
  var clocks = document.querySelectorAll("time[data-countdown]");
  if (!clocks.length) return;
  function tick() {
    clocks.forEach(function (el) {
      var left = Math.max(0, Math.round((Date.parse(el.getAttribute("datetime")) - Date.now()) / 1000));
      el.textContent = left === 0 ? "time is up" : Math.floor(left / 60) + " min " + String(left % 60).padStart(2, "0") + " s left";
    });
  }
  tick();
  setInterval(tick, 1000);
})();
