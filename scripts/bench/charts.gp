# The charts of scripts/bench/run's report, from report.awk's data files:
#   gnuplot -e "data='DIR'; idle_names='...'; sc_names='...'; mc_names='...'" charts.gp
# writes DIR/idle.png, DIR/cpu.png, DIR/rps.png and DIR/multicore.png for
# each list of names that is not empty. A server's colour is the same in
# every chart.

if (!exists("idle_names")) idle_names = ""
if (!exists("sc_names")) sc_names = ""
if (!exists("mc_names")) mc_names = ""

color(name) = \
  name eq "luvhost" ? "#1f6fb4" : name eq "luvhost-w1" ? "#6fa8dc" : \
  name eq "luvhost-nowatch" ? "#9fc5e8" : \
  name eq "luvhost-w2" ? "#1f6fb4" : name eq "node" ? "#3c9a3c" : \
  name eq "nginx" ? "#f08c1e" : name eq "nginx-w1" ? "#f6b26b" : \
  name eq "nginx-w2" ? "#f08c1e" : name eq "nginx-lua" ? "#8e63b8" : \
  name eq "threaded" ? "#d0312d" : "#777777"

set datafile missing "-"
set termoption noenhanced
set style line 99 lc rgb "#dddddd" lw 1
set grid ytics ls 99
set border 3
set tics nomirror
set key top left Left reverse noautotitle opaque

# ---------------------------------------------------------------- idle
if (strlen(idle_names) > 0) {
  set terminal pngcairo size 900,380 font "sans,10"
  set output data . "/idle.png"
  set multiplot layout 1,2 title "Idle keep-alive connections: one thread per connection vs an event loop"
  set xlabel "idle connections"
  set format x "%.0s%c"
  set format y "%g"
  set xtics out
  set ylabel "threads"
  set yrange [0:*]
  plot for [i=1:words(idle_names)] data . "/idle.dat" index (i-1) using 1:3 \
    with linespoints lw 2 pt 7 ps 0.7 lc rgb color(word(idle_names, i)) title word(idle_names, i)
  set ylabel "memory, MB"
  # The threaded server's line again, with its kernel stacks added (an
  # empty iteration, [1:0], when there is no threaded server).
  ti = 0
  do for [i=1:words(idle_names)] { if (word(idle_names, i) eq "threaded") { ti = i } }
  plot for [i=1:words(idle_names)] data . "/idle.dat" index (i-1) using 1:2 \
    with linespoints lw 2 pt 7 ps 0.7 lc rgb color(word(idle_names, i)) title word(idle_names, i) . " RSS", \
    for [i=(ti > 0 ? ti : 1):ti] data . "/idle.dat" index (i-1) using 1:4 \
    with linespoints lw 2 dt 2 pt 6 ps 0.7 lc rgb color("threaded") title "threaded RSS + kernel stacks"
  unset multiplot
  unset output
  set format x "% h"
  set xtics autofreq
  set yrange [*:*]
}

# ---------------------------------------------------------------- bars
# Clustered bars from FILE (a line per scenario; the µs/req columns of the
# K servers, then their req/s columns): column i of K sits at
# row + (i - 1 - (K - 1) / 2) / (K + gap).
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border rgb "#555555"
set boxwidth 0.9
set xtics scale 0
set xlabel ""
set yrange [0:*]
set key outside bottom center Left reverse noautotitle horizontal noopaque
set offsets 0, 0, graph 0.1, 0

bar_x(i, k) = $0 + (i - 1 - (k - 1) / 2.0) / (k + 1)
# The x range of FILE's clusters, without the empty slot autoscaling adds.
clusters(file) = system("grep -c . " . file) + 0

if (strlen(sc_names) > 0) {
  k = words(sc_names)
  set format y "%g"
  set terminal pngcairo size 760,380 font "sans,10"
  set xrange [-0.6:clusters(data . "/sc.dat") - 0.4]
  set output data . "/cpu.png"
  set title "Server CPU time per request, one core (lower is better)"
  set ylabel "µs of CPU per request"
  plot for [i=1:k] data . "/sc.dat" using (column(i + 1)):xtic(1) \
         lc rgb color(word(sc_names, i)) title word(sc_names, i), \
       for [i=1:k] data . "/sc.dat" using (bar_x(i, k)):(column(i + 1)):(sprintf("%.1f", column(i + 1))) \
         with labels offset 0,0.6 font "sans,8" notitle
  unset output
  set output data . "/rps.png"
  set title "Requests per second, one core (higher is better; wrk has the other core)"
  set ylabel "requests per second"
  set format y "%.0s%c"
  plot for [i=1:k] data . "/sc.dat" using (column(k + i + 1)):xtic(1) \
         lc rgb color(word(sc_names, i)) title word(sc_names, i), \
       for [i=1:k] data . "/sc.dat" using (bar_x(i, k)):(column(k + i + 1)):(sprintf("%.0fk", column(k + i + 1) / 1000)) \
         with labels offset 0,0.6 font "sans,8" notitle
  unset output
}

if (strlen(mc_names) > 0) {
  k = words(mc_names)
  set terminal pngcairo size 900,380 font "sans,10"
  set output data . "/multicore.png"
  set xrange [-0.6:clusters(data . "/mc.dat") - 0.4]
  set multiplot layout 1,2 title "Two cores shared by the server and wrk"
  set title "requests per second"
  set ylabel ""
  set format y "%.0s%c"
  plot for [i=1:k] data . "/mc.dat" using (column(k + i + 1)):xtic(1) \
         lc rgb color(word(mc_names, i)) title word(mc_names, i), \
       for [i=1:k] data . "/mc.dat" using (bar_x(i, k)):(column(k + i + 1)):(sprintf("%.0fk", column(k + i + 1) / 1000)) \
         with labels offset 0,0.6 font "sans,8" notitle
  set title "server CPU µs per request"
  set format y "%g"
  plot for [i=1:k] data . "/mc.dat" using (column(i + 1)):xtic(1) \
         lc rgb color(word(mc_names, i)) title word(mc_names, i), \
       for [i=1:k] data . "/mc.dat" using (bar_x(i, k)):(column(i + 1)):(sprintf("%.1f", column(i + 1))) \
         with labels offset 0,0.6 font "sans,8" notitle
  unset multiplot
  unset output
}
