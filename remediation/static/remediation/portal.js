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
