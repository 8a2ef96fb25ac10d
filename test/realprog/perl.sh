#!/usr/bin/env bash
# realprog_perl: perl runs a hash/array/string-heavy script (hashes of 150k
# keys, sorts, regex substitutions, splits and joins, a 2.8 MB string grown
# by appends, arrays of arrays, and three interpreter threads) plain and with
# corona preloaded.  Outputs (counts and MD5 digests) must be identical,
# and the preloaded perl's malloc/free must bind to corona.
source "$(dirname "$0")/common.sh" "$@"
rp_need perl
PERL=$(command -v perl)

cat >"$RP_TMP/work.pl" <<'PLEOF'
use strict; use warnings;
use Digest::MD5 qw(md5_hex);
# Threads first: each one clones the interpreter with all its data.
use threads;
my @thr = map { my $n = $_; threads->create(sub {
    my %th; $th{"t$n-$_"} = "x" x ($_ % 100) for 1 .. 40000;
    return md5_hex(join ",", map { "$_=$th{$_}" } sort keys %th); }) } 1 .. 3;
print "threads ", join(" ", map { $_->join } @thr), "\n";
my $seed = 12345;
sub rnd { $seed = ($seed * 1103515245 + 12345) % 2147483648; return $seed >> 8; }
my %h;
for my $i (0 .. 149999) {
    my $k = sprintf("k%06d-%s", $i, "z" x ($i % 13));
    $h{$k} = [ $i, "v" . ($i * 7919), scalar reverse($k) ];
}
print "hash.keys ", scalar(keys %h), "\n";
print "hash.md5 ", md5_hex(join(",", map { "$_=$h{$_}[1]" } sort keys %h)), "\n";
for my $k (keys %h) { delete $h{$k} if $h{$k}[0] % 3; }
$h{"n$_"} = { n => $_, s => "x" x ($_ % 900), l => [ (1) x ($_ % 30) ] } for 0 .. 39999;
my $sum = 0;
for my $v (values %h) { $sum += ref($v) eq 'HASH' ? length($v->{s}) + @{ $v->{l} } : $v->[0]; }
print "hash2 ", scalar(keys %h), " $sum\n";
my @a = map { rnd() } 1 .. 200000;
my @s = sort { $a <=> $b } @a;
print "sorted.md5 ", md5_hex(join(",", @s[ grep { $_ % 101 == 0 } 0 .. $#s ])), "\n";
my @w = map { my $l = 1 + rnd() % 12; join("", map { chr(97 + rnd() % 26) } 1 .. $l) } 1 .. 60000;
my $text = join(" ", @w);
my %freq; $freq{$1}++ while $text =~ /\b([aeiou][a-z]+)\b/g;
my @top = (sort { $freq{$b} <=> $freq{$a} || $a cmp $b } keys %freq)[0 .. 9];
print "top ", join(" ", map { "$_:$freq{$_}" } @top), "\n";
(my $t2 = $text) =~ s/([aeiou])/uc($1) x 3/ge;
print "subst ", length($t2), " ", md5_hex($t2), "\n";
my @parts = split /q/, $t2;
my $joined = join("Q", reverse @parts);
print "split ", scalar(@parts), " ", md5_hex($joined), "\n";
my $big = "";
$big .= sprintf("%d:%s;", $_, $w[$_ % @w]) for 0 .. 199999;
print "big ", length($big), " ", md5_hex($big), "\n";
my @aoa = map { [ map { $_ * 2 } 0 .. ($_ % 50) ] } 0 .. 49999;
splice(@aoa, 1000, 20000);
my $n = 0; $n += @$_ for @aoa;
print "aoa ", scalar(@aoa), " $n\n";
PLEOF

rp_plain_and_corona perl "$PERL" "$RP_TMP/work.pl"
grep -q '^threads [0-9a-f]\{32\} ' "$RP_TMP/corona.out" || rp_fail "perl output lacks the threads line"
rp_check_served corona "$PERL"
echo "[$RP_NAME] OK: $(wc -l <"$RP_TMP/corona.out") identical output lines; perl $t_plain s plain, $t_corona s with corona; total $(rp_secs) s"
