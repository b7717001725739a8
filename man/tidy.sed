# Run on go-md2man's output.
# - go-md2man puts .nh (no hyphenation) before .TH, which turns hyphenation
#   back on: put it after, so that option names are never hyphenated.
# - go-md2man starts every section with .PP, which man ignores and
#   `mandoc -T lint` reports ("skipping paragraph macro").
/^\.nh$/d
/^\.TH /a\
.nh
/^\.SH /{
n
/^\.PP$/d
}
