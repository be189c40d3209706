# Latency against offered load, gateway vs direct libcurl to the same nginx upstream.
# Called by bench/run.sh as: gnuplot -e "datafile='...'; outfile='...'" bench/plot.gp
# Data columns: offered rate (/s), gateway p50, gateway p99, direct p50, direct p99 (ms).
set terminal pngcairo size 900,520 font ",10"
set output outfile
set title "Latency against offered load (open loop, from intended send time; nginx upstream)"
set xlabel "offered load (requests/s)"
set ylabel "latency (ms, log scale)"
set logscale y
set grid xtics ytics mytics
set key top left
set style data linespoints
plot datafile using 1:2 title "gateway Create p50" lw 2 pt 7 lc rgb "#1f77b4", \
     datafile using 1:3 title "gateway Create p99" lw 2 pt 5 lc rgb "#1f77b4" dt 2, \
     datafile using 1:4 title "direct libcurl p50" lw 2 pt 7 lc rgb "#2ca02c", \
     datafile using 1:5 title "direct libcurl p99" lw 2 pt 5 lc rgb "#2ca02c" dt 2
