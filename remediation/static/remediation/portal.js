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
