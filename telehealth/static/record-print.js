// "Print or save as PDF" on the record page: opens the browser's print dialog (the @media print rules in app.css
// make it a clean document). Without JavaScript the link opens the print view (?print=1) instead.
(function () {
  var link = document.getElementById("print-record");
  if (!link || typeof window.print !== "function") return;
  link.addEventListener("click", function (event) {
    event.preventDefault();
    window.print();
  });
})();
