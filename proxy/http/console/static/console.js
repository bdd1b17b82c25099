// Tollgate console: decisions without a reload, and the review queue's keys
// (j/k next and previous, a approve, r reject). Without this script every form still
// works as a plain POST. No dependencies, no build step; served from the proxy itself.
"use strict";

(function () {
  const queue = document.getElementById("queue");
  if (!queue) return;
  const announce = document.getElementById("announce");
  const items = () => Array.from(queue.querySelectorAll(".item"));
  let current = null;

  function select(item) {
    if (current) current.classList.remove("current");
    current = item || null;
    if (!current) return;
    current.classList.add("current");
    current.focus({ preventScroll: true });
    current.scrollIntoView({ block: "nearest" });
  }

  function step(by) {
    const all = items();
    if (!all.length) return;
    const at = all.indexOf(current);
    select(all[Math.min(all.length - 1, Math.max(0, at < 0 ? 0 : at + by))]);
  }

  async function decide(form, button) {
    const item = form.closest(".item");
    const problem = form.querySelector(".problem");
    const body = new FormData(form);
    body.append(button.name, button.value);
    form.querySelectorAll("button").forEach((b) => { b.disabled = true; });
    let answer;
    try {
      const response = await fetch(form.action, {
        method: "POST",
        body: body,
        credentials: "same-origin",
        headers: { accept: "application/json", "x-csrf-token": body.get("csrf_token") },
      });
      answer = await response.json();
      if (!response.ok) throw new Error(answer.error ? answer.error.message : "HTTP " + response.status);
    } catch (error) {
      problem.textContent = "Not recorded: " + error.message;
      problem.hidden = false;
      form.querySelectorAll("button").forEach((b) => { b.disabled = false; });
      return;
    }
    const all = items();
    const next = all[all.indexOf(item) + 1] || all[all.indexOf(item) - 1];
    announce.textContent = answer.request_id + " " + answer.review_status + " by " + answer.review.reviewer;
    if (queue.dataset.status === "pending") {
      item.remove();
      if (!items().length) document.querySelector(".empty").hidden = false;
    } else {
      const decided = document.createElement("p");
      decided.className = "decided";
      decided.textContent = answer.review_status + " by " + answer.review.reviewer + " at " + answer.review.reviewed_at;
      form.replaceWith(decided);
      item.dataset.reviewStatus = answer.review_status;
    }
    select(queue.contains(item) ? item : next);
  }

  queue.addEventListener("submit", (event) => {
    const form = event.target;
    if (!form.classList.contains("decision") || !event.submitter) return;
    event.preventDefault();
    decide(form, event.submitter);
  });

  queue.addEventListener("click", (event) => {
    const item = event.target.closest(".item");
    if (item && item !== current) select(item);
  });

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target.closest("input, textarea, select")) return;
    const press = (name) => {
      const button = current && current.querySelector('button[name="' + name + '"]');
      if (button) { event.preventDefault(); button.click(); }
    };
    if (event.key === "j") { event.preventDefault(); step(1); }
    else if (event.key === "k") { event.preventDefault(); step(-1); }
    else if (event.key === "a") press("approve");
    else if (event.key === "r") press("reject");
  });

  select(items()[0]);
})();
