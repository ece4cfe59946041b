// The tokens page's copy button: puts the new token on the clipboard. Where the Clipboard API
// is missing (plain HTTP on another host than this one is not a secure context), the token is
// selected and copied the old way, or left selected for Ctrl+C. Without script the button
// stays hidden and the token can still be selected by hand.
for (const button of document.querySelectorAll("button[data-copy]")) {
  const field = document.getElementById(button.dataset.copy);
  const status = document.getElementById(button.dataset.copyStatus);
  button.hidden = false;
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(field.value);
      status.textContent = "Copied.";
    } catch {
      field.focus();
      field.select();
      const copied = document.execCommand("copy");
      status.textContent = copied ? "Copied." : "Press Ctrl+C (⌘C) to copy the selected token.";
    }
  });
}
