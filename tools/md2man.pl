#!/usr/bin/perl
# md2man.pl: makes a man page from sections of canopy's markdown reference
# (docs/*.md), so the man pages and the docs are one source and cannot
# drift. Perl, because Debian always has it.
#
#   md2man.pl --name canopyd --section 8 --summary "TEXT" [--version V]
#             [--synopsis FILE:HEADING] [--see-also "a(1), b(5)"]
#             --part "TITLE=FILE:HEADING[,HEADING...]" ... > canopyd.8
#
# Each --part becomes a section (.SH TITLE) holding the markdown under each
# HEADING, down to the next heading of the same or a higher level. A
# HEADING ending in "*" takes every heading that starts with it, so
# "canopyctl*" takes "### canopyctl" and each "### canopyctl NAME" after it
# (one subsection each), and "?HEADING" is left out quietly when the file
# has no such heading; "HEADING" with nothing after ":" takes the text
# before the file's first "##" heading. Headings below the one taken
# become subsections. --synopsis takes the first indented block under its
# heading as the SYNOPSIS, and that block is then left out of the part.
#
# Markdown understood: headings, paragraphs, indented and fenced code
# blocks, tables (a tagged paragraph per row: the first cell as the tag,
# the others as text, the header row dropped), list items ("- "), `code`,
# **bold**, *italic*, [links](target) and backslash escapes.
use strict;
use warnings;
use utf8;
use Getopt::Long;

binmode STDOUT, ':encoding(UTF-8)';

my ($name, $section, $summary, $version, $synopsis, $see_also) = ('', '', '', '', undef, undef);
my @parts;
GetOptions (
  'name=s'     => \$name,
  'section=s'  => \$section,
  'summary=s'  => \$summary,
  'version=s'  => \$version,
  'synopsis=s' => \$synopsis,
  'see-also=s' => \$see_also,
  'part=s'     => \@parts,
) or die "usage: md2man.pl --name N --section S --summary T --part TITLE=FILE:HEADING...\n";
die "md2man.pl: --name, --section and at least one --part are needed\n"
  unless $name ne '' && $section ne '' && @parts;

my %files;

sub read_lines {
  my ($path) = @_;
  return $files{$path} if $files{$path};
  open my $fh, '<:encoding(UTF-8)', $path or die "md2man.pl: cannot read $path: $!\n";
  my @lines = <$fh>;
  close $fh;
  chomp @lines;
  return $files{$path} = \@lines;
}

sub heading_of {
  my ($line) = @_;
  return $line =~ /^(#{1,6})\s+(.*?)\s*$/ ? (length $1, $2) : ();
}

# The lines under the headings @wanted select, each section with its own
# heading as the first line (undef for a file's introduction).
sub select_sections {
  my ($path, @wanted) = @_;
  my $lines = read_lines ($path);
  my @out;
  my $fence = 0;
  for my $want (@wanted) {
    my $optional = $want =~ s/^\?// ? 1 : 0;
    my $prefix = $want =~ s/\*$// ? 1 : 0;
    my ($taking, $level) = (0, 0);
    if ($want eq '' && !$prefix) {
      # The introduction: after the "#" title, before the first "##".
      my @intro;
      for my $line (@$lines) {
        my ($l) = heading_of ($line);
        last if defined $l && $l >= 2;
        next if defined $l;
        push @intro, $line;
      }
      push @out, [ undef, @intro ];
      next;
    }
    my $found = 0;
    $fence = 0;
    for my $line (@$lines) {
      $fence = !$fence if $line =~ /^```/;
      my ($l, $text) = $fence ? () : heading_of ($line);
      if (defined $l) {
        my $match = $prefix ? index ($text, $want) == 0 : $text eq $want;
        if ($match && (!$taking || $l <= $level)) {
          ($taking, $level) = (1, $l);
          push @out, [ $text ];
          $found = 1;
          next;
        }
        $taking = 0 if $taking && $l <= $level;
      }
      push @{ $out[-1] }, $line if $taking;
    }
    die "md2man.pl: no heading \"$want\" in $path\n" unless $found || $optional;
  }
  return @out;
}

# Inline markdown to roff.
sub inline {
  my ($text) = @_;
  my @escaped;
  # Backslash escapes first, kept aside from what follows.
  $text =~ s/\\([\\`*_{}\[\]()#+\-.!|<>])/push @escaped, $1; "\x{1}" . $#escaped . "\x{2}"/ge;
  $text =~ s/\\/\\e/g;
  my @code;
  $text =~ s/`([^`]*)`/push @code, $1; "\x{3}" . $#code . "\x{4}"/ge;
  $text =~ s/\[([^\]]+)\]\([^)]*\)/$1/g;
  $text =~ s/\*\*(.+?)\*\*/\\fB$1\\fR/g;
  $text =~ s/(^|[^\w*])\*(\S(?:.*?\S)?)\*(?=[^\w*]|$)/$1\\fI$2\\fR/g;
  $text =~ s/\x{3}(\d+)\x{4}/'\\fB' . roff_literal ($code[$1]) . '\\fR'/ge;
  $text =~ s/\x{1}(\d+)\x{2}/roff_char ($escaped[$1])/ge;
  return $text;
}

sub roff_char {
  my ($c) = @_;
  return '\\e' if $c eq '\\';
  return '\\-' if $c eq '-';
  return '\\&.' if $c eq '.';
  return $c;
}

sub roff_literal {
  my ($text) = @_;
  $text =~ s/\\/\\e/g;
  $text =~ s/-/\\-/g;
  return $text;
}

# A line roff would take as a request if it began with "." or "'".
sub safe_line {
  my ($line) = @_;
  return $line =~ /^[.']/ ? "\\&$line" : $line;
}

sub cells {
  my ($row) = @_;
  $row =~ s/^\s*\|//;
  $row =~ s/\|\s*$//;
  my @cells;
  my $cell = '';
  # Split on "|" that is not escaped or inside `code`.
  my $in_code = 0;
  for (my $i = 0; $i < length $row; $i++) {
    my $c = substr $row, $i, 1;
    if ($c eq '\\' && $i + 1 < length $row) {
      $cell .= $c . substr ($row, ++$i, 1);
      next;
    }
    $in_code = !$in_code if $c eq '`';
    if ($c eq '|' && !$in_code) {
      push @cells, $cell;
      $cell = '';
      next;
    }
    $cell .= $c;
  }
  push @cells, $cell;
  s/^\s+|\s+$//g for @cells;
  return @cells;
}

sub convert {
  my ($lines, $base_level) = @_;
  my @out;
  my @paragraph;
  my $flush = sub {
    if (@paragraph) {
      push @out, '.PP' unless @out && $out[-1] =~ /^\.(PP|SH|SS)/;
      push @out, safe_line (inline (join ' ', @paragraph));
      @paragraph = ();
    }
  };
  my $i = 0;
  while ($i < @$lines) {
    my $line = $lines->[$i];
    if ($line =~ /^```/) {
      $flush->();
      push @out, '.PP', '.RS 4', '.nf';
      for ($i++; $i < @$lines && $lines->[$i] !~ /^```/; $i++) {
        push @out, safe_line (roff_literal ($lines->[$i]));
      }
      push @out, '.fi', '.RE';
      $i++;
      next;
    }
    my ($level, $text) = heading_of ($line);
    if (defined $level) {
      $flush->();
      push @out, '.SS "' . inline_plain ($text) . '"';
      $i++;
      next;
    }
    if ($line =~ /^ {4}\S/ && !@paragraph) {
      push @out, '.PP', '.RS 4', '.nf';
      while ($i < @$lines && ($lines->[$i] =~ /^ {4}/ || ($lines->[$i] eq ''
             && $i + 1 < @$lines && $lines->[$i + 1] =~ /^ {4}\S/))) {
        push @out, safe_line (roff_literal (substr ($lines->[$i], 4)));
        $i++;
      }
      push @out, '.fi', '.RE';
      next;
    }
    if ($line =~ /^\s*\|/) {
      $flush->();
      my @rows;
      while ($i < @$lines && $lines->[$i] =~ /^\s*\|/) {
        push @rows, $lines->[$i++];
      }
      # The header and the rule under it say nothing a man page needs.
      shift @rows if @rows > 1 && $rows[1] =~ /^\s*\|[\s|:-]+\|\s*$/;
      shift @rows if @rows && $rows[0] =~ /^\s*\|[\s|:-]+\|\s*$/;
      for my $row (@rows) {
        my ($tag, @rest) = cells ($row);
        push @out, '.TP', safe_line (inline ($tag));
        push @out, safe_line (inline (join ' \\(em ', grep { $_ ne '' } @rest)) if @rest;
      }
      next;
    }
    if ($line =~ /^\s*[-*] (.*)$/) {
      $flush->();
      my @item = ($1);
      $i++;
      while ($i < @$lines && $lines->[$i] =~ /^\s{2,}\S/ && $lines->[$i] !~ /^\s*[-*] /) {
        (my $more = $lines->[$i++]) =~ s/^\s+//;
        push @item, $more;
      }
      push @out, '.IP \\(bu 2', safe_line (inline (join ' ', @item));
      next;
    }
    if ($line =~ /^\s*$/) {
      $flush->();
      $i++;
      next;
    }
    (my $text_line = $line) =~ s/^\s+//;
    push @paragraph, $text_line;
    $i++;
  }
  $flush->();
  return @out;
}

sub inline_plain {
  my ($text) = @_;
  $text =~ s/`//g;
  $text =~ s/"/\\(dq/g;
  return $text;
}

my $title = uc $name;
print ".\\\" Generated by tools/md2man.pl from canopy's docs/*.md; edit those instead.\n";
print ".TH \"$title\" \"$section\" \"\" \"canopy $version\" \"canopy\"\n";
print ".nh\n.ad l\n";
print ".SH NAME\n", roff_literal ($name), " \\- ", inline ($summary), "\n";

my @synopsis_block;
if (defined $synopsis) {
  my ($path, $heading) = $synopsis =~ /^(.*?):(.*)$/ or die "md2man.pl: --synopsis FILE:HEADING\n";
  my ($sec) = select_sections ($path, $heading);
  my @lines = @$sec[1 .. $#$sec];
  my $start;
  for my $k (0 .. $#lines) {
    if ($lines[$k] =~ /^ {4}\S/) { $start = $k; last; }
  }
  if (defined $start) {
    my $k = $start;
    while ($k < @lines && $lines[$k] =~ /^ {4}\S/) {
      push @synopsis_block, substr ($lines[$k], 4);
      $k++;
    }
    print ".SH SYNOPSIS\n.nf\n";
    print safe_line (roff_literal ($_)), "\n" for @synopsis_block;
    print ".fi\n";
  }
}

for my $part (@parts) {
  my ($heading_title, $path, $list) = $part =~ /^(.*?)=(.*?):(.*)$/
    or die "md2man.pl: --part TITLE=FILE:HEADING[,HEADING...]\n";
  print ".SH \"", uc ($heading_title), "\"\n";
  my $n_section = 0;
  for my $sec (select_sections ($path, split /,/, $list, -1)) {
    my ($heading, @lines) = @$sec;
    if (@synopsis_block) {
      # The synopsis is said once, above.
      my $joined = join "\n", @lines;
      my $block = join "\n", map { "    $_" } @synopsis_block;
      $joined =~ s/\Q$block\E\n?// and @synopsis_block = ();
      @lines = split /\n/, $joined, -1;
    }
    # Several sections in one part: each after the first says which it is.
    print ".SS \"", inline_plain ($heading), "\"\n" if defined $heading && $n_section++ > 0;
    print "$_\n" for convert (\@lines);
  }
}

if (defined $see_also) {
  print ".SH \"SEE ALSO\"\n";
  my @refs = map { s/^\s+|\s+$//gr } split /,/, $see_also;
  print join (",\n", map { /^(.*)\((\w+)\)$/ ? "\\fB" . roff_literal ($1) . "\\fR($2)" : $_ } @refs),
    "\n";
}
