// PRISM ops portal: behaviour the templates declare with data attributes, so no page needs an
// inline script or event handler (the Content-Security-Policy allows scripts from 'self' only).
"use strict";
// <form data-confirm="Question?">: submitting asks first; Cancel submits nothing.
document.addEventListener("submit", (event) => {
  const question = event.target.dataset ? event.target.dataset.confirm : undefined;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
// <button data-copy="text">: puts the text on the clipboard and says so on the button.
document.addEventListener("click", (event) => {
  const button = event.target.closest ? event.target.closest("[data-copy]") : null;
  if (!button) {
    return;
  }
  const text = button.dataset.copy;
  const done = () => {
    button.textContent = "Copied";
  };
  if (navigator.clipboard && navigator.clipboard.writeText) {
    navigator.clipboard.writeText(text).then(done, () => window.prompt("Copy the link:", text));
  } else {
    window.prompt("Copy the link:", text);
  }
});
// <div data-progress-url="…/progress.json" data-state="running">: live figures without reloading
// the page. Every few seconds the run's JSON (read from the database) fills the elements inside
// marked data-live="name" (text), data-live-value="name" (a <progress>) and
// data-live-count="outcome"; when the run's state changes, a page marked
// data-progress-swap="page" replaces this element's content with the page's current one (its
// rounds, controls and failures), keeping the scroll position; any other element shows its
// [data-live-ended] part. Polling stops when the run has ended or the endpoint refuses.
(() => {
  const PERIOD_MS = 2000;
  const fill = (box, data) => {
    box.querySelectorAll("[data-live]").forEach((el) => {
      const value = data.text[el.dataset.live];
      if (value !== undefined && el.textContent !== value) {
        el.textContent = value;
      }
    });
    box.querySelectorAll("[data-live-value]").forEach((el) => {
      el.value = data[el.dataset.liveValue];
    });
    box.querySelectorAll("[data-live-count]").forEach((el) => {
      el.textContent = String(data.counts[el.dataset.liveCount] ?? 0);
    });
  };
  const swap = (box) => {
    const x = window.scrollX;
    const y = window.scrollY;
    return fetch(window.location.href, { credentials: "same-origin" })
      .then((response) => (response.ok ? response.text() : Promise.reject(response.status)))
      .then((html) => {
        const fresh = new DOMParser().parseFromString(html, "text/html").getElementById(box.id);
        if (fresh) {
          box.innerHTML = fresh.innerHTML;
          box.dataset.state = fresh.dataset.state || "";
        }
        window.scrollTo(x, y);
      });
  };
  const stop = (box, why) => {
    const note = box.querySelector("[data-live-stopped]");
    if (note) {
      note.hidden = false;
      note.textContent = why;
    }
  };
  const poll = (box) => {
    fetch(box.dataset.progressUrl, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    })
      .then((response) => {
        if (!response.ok) {
          throw new Error(`live updates stopped (HTTP ${response.status}): reload the page`);
        }
        return response.json();
      })
      .then((data) => {
        fill(box, data);
        const changed = data.state !== box.dataset.state;
        let next = Promise.resolve();
        if (changed && box.dataset.progressSwap === "page") {
          next = swap(box);
        } else if (changed || !data.active) {
          box.dataset.state = data.state;
          box.querySelectorAll("[data-live-ended]").forEach((el) => {
            el.hidden = data.active;
          });
        }
        return next.then(() => {
          if (data.active) {
            window.setTimeout(() => poll(box), PERIOD_MS);
          }
        });
      })
      .catch((error) => stop(box, String(error.message || error)));
  };
  const start = () => {
    document.querySelectorAll("[data-progress-url]").forEach((box) => {
      window.setTimeout(() => poll(box), PERIOD_MS);
    });
  };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
