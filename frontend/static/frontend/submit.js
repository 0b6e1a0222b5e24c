// The family/variant drop-downs of the submit page and the submission form: the variant list shows only the
// chosen family's variants, and the page's command line follows the choice. Without JavaScript every variant
// stays listed and the server refuses a mismatch with a message naming it.
(function () {
  "use strict";

  function link(family, variant, onChange) {
    if (!family || !variant) return;
    function filter() {
      var first = null;
      Array.prototype.forEach.call(variant.options, function (option) {
        var shown = !option.dataset.family || option.dataset.family === family.value;
        option.hidden = !shown;
        option.disabled = !shown;
        if (shown && first === null) first = option;
      });
      var current = variant.options[variant.selectedIndex];
      // By index: families share variant names ("combiner"), and a value would pick another family's option.
      if (!current || current.disabled) variant.selectedIndex = first ? first.index : -1;
      if (onChange) onChange();
    }
    family.addEventListener("change", filter);
    variant.addEventListener("change", function () { if (onChange) onChange(); });
    filter();
  }

  var command = document.getElementById("rs-command");
  var template = command ? command.textContent : "";
  var pickerFamily = document.getElementById("rs-family");
  var pickerVariant = document.getElementById("rs-variant");
  link(pickerFamily, pickerVariant, function () {
    if (!command) return;
    command.textContent = template.replace("FAMILY", pickerFamily.value).replace("VARIANT", pickerVariant.value);
    document.querySelectorAll(".rs-variants tr[data-variant]").forEach(function (row) {
      var chosen = row.dataset.family === pickerFamily.value && row.dataset.variant === pickerVariant.value;
      row.classList.toggle("rs-chosen", chosen);
    });
  });

  link(document.getElementById("id_family"), document.getElementById("id_variant"));
})();
