/* The case screen's manifest upload: an XHR (fetch has no upload progress) so the <progress> follows the bytes
   sent; the server answers with an HTML fragment (the count added, or the table of row errors) shown under the
   form. After a success the manifest table is fetched again through its filter form (htmx, same filters). */
(function () {
  "use strict";
  const form = document.getElementById("manifest-upload");
  if (!form) return;
  const bar = document.getElementById("upload-progress");
  const result = document.getElementById("upload-result");
  const button = document.getElementById("upload-submit");

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
    bar.hidden = false;
    bar.value = 0;
    button.disabled = true;
    result.textContent = "";
    xhr.upload.addEventListener("progress", function (progress) {
      if (progress.lengthComputable) bar.value = Math.round((100 * progress.loaded) / progress.total);
    });
    xhr.addEventListener("load", function () {
      bar.value = 100;
      button.disabled = false;
      result.innerHTML = xhr.responseText;
      if (xhr.status >= 200 && xhr.status < 300) {
        form.reset();
        const filters = document.querySelector("form.filters[hx-get]");
        if (filters && window.htmx) window.htmx.trigger(filters, "change");
      }
    });
    xhr.addEventListener("error", function () {
      button.disabled = false;
      result.textContent = form.dataset.networkError;
    });
    xhr.send(new FormData(form));
  });
})();
