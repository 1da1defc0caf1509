// s3imports console: the pages work without this script; it only saves a click.
// - In the set-up, a changed choice updates the step at once (the Update button),
//   unless the form is already on its way (a button was pressed).
// - A chosen mapping file is read into the text box the form posts.
document.addEventListener("DOMContentLoaded", () => {
  const update = document.querySelector("button[data-update]");
  if (update) {
    let sent = false;
    update.form.addEventListener("submit", () => { sent = true; });
    document.querySelectorAll("select[data-live]").forEach((select) => {
      select.addEventListener("change", () => { if (!sent) update.click(); });
    });
  }
  document.querySelectorAll("input[type=file][data-into]").forEach((input) => {
    input.addEventListener("change", () => {
      const file = input.files && input.files[0];
      const target = document.getElementById(input.dataset.into);
      if (!file || !target) return;
      file.text().then((text) => { target.value = text; });
    });
  });
});
