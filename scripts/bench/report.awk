# The tables of scripts/bench/run's report, from its raw.tsv (one figure a
# line: server, scenario, round, metric, value), as Markdown on stdout, and
# the charts' data files in the directory `data` (for charts.gp):
#   idle.dat   a block per server (in the order of `servers`), lines
#              "connections rss_mb threads rss_plus_kernel_stacks_mb"
#   sc.dat     "scenario <µs/req per server...> <req/s per server...>"
#   mc.dat     the same for the multi-core runs
#   names      lines "idle|sc|mc NAME..." naming the columns and blocks
# Variables (-v): servers, scenarios, counts (idle connection counts, the
# first 0), mc_servers, mc_scenarios, data, ref (the ratio column's server),
# startup (1 when startup was measured), duration, mc_desc (how the
# multi-core runs were placed).

BEGIN { FS = "\t" }

{
  k = $1 SUBSEP $2 SUBSEP $4
  n[k]++
  v[k, n[k]] = $5
  if ($4 == "errors") errsum[$1, $2] += $5
  if ($4 == "failed" || $4 == "died") bad[$1] = bad[$1] + 1
  if ($4 == "cmd") cmd[$1] = $5
  if ($2 == "startup" && $4 == "ms" && !($1 in seen_startup)) {
    seen_startup[$1] = 1
    startup_order[++n_startup] = $1
  }
}

# Median over the rounds ("" when there is none).
function med(s, sc, m,   k, c, i, j, t, a) {
  k = s SUBSEP sc SUBSEP m
  c = n[k]
  if (!c) return ""
  for (i = 1; i <= c; i++) a[i] = v[k, i] + 0
  for (i = 2; i <= c; i++) {
    t = a[i]
    for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]
    a[j + 1] = t
  }
  return c % 2 ? a[(c + 1) / 2] : (a[c / 2] + a[c / 2 + 1]) / 2
}

function minmax(s, sc, m, f,   k, c, i, lo, hi, x) {
  k = s SUBSEP sc SUBSEP m
  c = n[k]
  if (c < 2) return "-"
  lo = hi = v[k, 1] + 0
  for (i = 2; i <= c; i++) {
    x = v[k, i] + 0
    if (x < lo) lo = x
    if (x > hi) hi = x
  }
  return sprintf(f "–" f, lo, hi)
}

# 12345.6 -> "12,346"
function commas(x,   s, neg) {
  if (x == "") return "-"
  s = sprintf("%.0f", x)
  neg = s ~ /^-/
  if (neg) s = substr(s, 2)
  while (s ~ /[0-9][0-9][0-9][0-9]/) sub(/[0-9][0-9][0-9]($|,)/, ",&", s)
  return (neg ? "-" : "") s
}

function fmt(f, x) { return x == "" ? "-" : sprintf(f, x) }
function ratio(a, b) { return (a == "" || b == "" || b == 0) ? "-" : sprintf("%.2f", a / b) }
function nan(x) { return x == "" ? "-" : x }
function yes(ok) { return ok ? "yes" : "**no**" }

# The throughput table of the servers S[1..ns] over the scenarios C[1..nc].
function throughput(S, ns, C, nc, prefix,   i, j, s, sc, rps, us, rref, uref) {
  print "| server | scenario | req/s | ÷ " ref " | p50 ms | p99 ms | server µs/req | ÷ " ref " | µs/req, rounds | server CPU% | wrk CPU% | PSI % | errors |"
  print "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for (j = 1; j <= nc; j++) {
    sc = prefix C[j]
    rref = med(ref, sc, "rps")
    uref = med(ref, sc, "us_per_req")
    for (i = 1; i <= ns; i++) {
      s = S[i]
      rps = med(s, sc, "rps")
      us = med(s, sc, "us_per_req")
      printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", s, C[j],
        commas(rps), ratio(rps, rref), fmt("%.2f", med(s, sc, "p50_ms")),
        fmt("%.2f", med(s, sc, "p99_ms")), fmt("%.1f", us), ratio(us, uref),
        minmax(s, sc, "us_per_req", "%.1f"), fmt("%.0f", med(s, sc, "cpu_pct")),
        fmt("%.0f", med(s, sc, "cli_pct")), fmt("%.0f", med(s, sc, "psi_pct")),
        (n[s, sc, "rps"] ? errsum[s, sc] + 0 : "-")
    }
  }
  print ""
}

# name.dat: a line per scenario, µs/req then req/s of each server.
function bars(file, S, ns, C, nc, prefix,   i, j, line) {
  for (j = 1; j <= nc; j++) {
    line = C[j]
    for (i = 1; i <= ns; i++) line = line " " nan(med(S[i], prefix C[j], "us_per_req"))
    for (i = 1; i <= ns; i++) line = line " " nan(med(S[i], prefix C[j], "rps"))
    print line > (data "/" file)
  }
  close(data "/" file)
}

# A throughput table, its chart data (tag.dat) and its line in `names`.
function throughput_section(tag, L, nl, SC, nsc, prefix,   i, line) {
  throughput(L, nl, SC, nsc, prefix)
  line = tag
  for (i = 1; i <= nl; i++) line = line " " L[i]
  print line > names
  bars(tag ".dat", L, nl, SC, nsc, prefix)
}

END {
  ns = split(servers, S, " ")
  nsc = split(scenarios, C, " ")
  ncount = split(counts, N, " ")
  nmc = split(mc_servers, M, " ")
  nmcs = split(mc_scenarios, MC, " ")
  for (j = 1; j <= nsc; j++) if (C[j] == "idle") idle = 1; else W[++nw] = C[j]
  names = data "/names"
  printf "" > names

  # ------------------------------------------------------------ idle
  print "## Idle connections"
  print ""
  if (!idle) {
    print "Not run (SCENARIOS has no `idle`)."
    print ""
  } else {
    print "RSS and threads of each server (summed over its processes) holding idle keep-alive"
    print "connections: each sent one request and read the response, then stays open. The"
    print "thread-per-connection server also uses a kernel stack per thread, which RSS does not"
    print "show: the dashed line and the *kernel stacks* column count them (`KernelStack` in"
    print "/proc/meminfo, after minus before; system-wide, so about 0 ± noise for the others)."
    print ""
    print "![Threads and memory against idle connections](idle.png)"
    print ""
    hdr = "| threads |"; sep = "|---|"
    for (c = 1; c <= ncount; c++) { hdr = hdr " " commas(N[c]) " |"; sep = sep "---:|" }
    print hdr
    print sep
    for (i = 1; i <= ns; i++) {
      line = "| " S[i] " |"
      for (c = 1; c <= ncount; c++) line = line " " commas(med(S[i], "idle", "threads." N[c])) " |"
      print line
    }
    print ""
    top = N[ncount]
    hdr = "| RSS, MB |"; sep = "|---|"
    for (c = 1; c <= ncount; c++) { hdr = hdr " " commas(N[c]) " |"; sep = sep "---:|" }
    print hdr " KB per connection | kernel stacks @" commas(top) ", MB | VSZ @" commas(top) ", MB | alive @" commas(top) " |"
    print sep "---:|---:|---:|---:|"
    names_line = "idle"
    for (i = 1; i <= ns; i++) {
      s = S[i]
      line = "| " s " |"
      for (c = 1; c <= ncount; c++) line = line " " fmt("%.1f", med(s, "idle", "rss_kb." N[c]) / 1024) " |"
      r0 = med(s, "idle", "rss_kb." N[1]); r1 = med(s, "idle", "rss_kb." top)
      ks = med(s, "idle", "kstack_kb." top)
      per = (r0 == "" || r1 == "" || top == 0) ? "-" : sprintf("%.2f", (r1 - r0) / top)
      printf "%s %s | %s | %s | %s |\n", line, per, fmt("%.1f", ks == "" ? "" : ks / 1024),
        commas(med(s, "idle", "vsz_kb." top) / 1024), commas(med(s, "idle", "alive." top))
      if (r0 == "") continue
      names_line = names_line " " s
      for (c = 1; c <= ncount; c++) {
        r = med(s, "idle", "rss_kb." N[c]); ks = med(s, "idle", "kstack_kb." N[c])
        if (r == "") continue
        printf "%d %.2f %s %.2f\n", N[c], r / 1024, nan(med(s, "idle", "threads." N[c])),
          (r + (ks > 0 ? ks : 0)) / 1024 > (data "/idle.dat")
      }
      printf "\n\n" > (data "/idle.dat")
    }
    close(data "/idle.dat")
    print names_line > names
    print ""
  }

  # ------------------------------------------------------------ one core
  print "## Throughput and cost, one core"
  print ""
  if (!nw) {
    print "Not run (SCENARIOS has no wrk scenario)."
    print ""
  } else {
    print "wrk against each server in turn: keep-alive with 50 and 200 connections (ka-c50,"
    print "ka-c200) and a new connection per request (close-c50, `Connection: close`)."
    print "*server µs/req* is the server's CPU time (user + system, all its processes, from"
    print "/proc/PID/stat before and after) per completed request: when wrk's core saturates"
    print "first, req/s bunch up and this is the figure that compares servers. ÷ " ref ": the"
    print "ratio to " ref "'s median; *µs/req, rounds*: the lowest and highest round; *PSI %*:"
    print "the share of the run in which some task waited for a CPU (system-wide; high means"
    print "contention, from another tenant or from the server's own threads)."
    print ""
    print "![Server CPU time per request](cpu.png)"
    print ""
    print "![Requests per second](rps.png)"
    print ""
    throughput_section("sc", S, ns, W, nw, "")
  }

  # ------------------------------------------------------------ multi-core
  print "## Multi-core"
  print ""
  if (!nmc || !nmcs) {
    print "Not run (MC_ONLY or MC_SCENARIOS is empty)."
    print ""
  } else {
    print "luvhost with `--workers 1` and `--workers 2` (processes sharing the port with"
    print "SO_REUSEPORT), nginx with `worker_processes` 1 and 2, and node (one process) for"
    print "the ratios. " mc_desc
    print ""
    print "![Multi-core: server CPU time per request and requests per second](multicore.png)"
    print ""
    throughput_section("mc", M, nmc, MC, nmcs, "mc-")
  }
  close(names)

  # ------------------------------------------------------------ startup
  print "## Startup"
  print ""
  if (!n_startup) {
    print "Not run (STARTUP_RUNS=0)."
    print ""
  } else {
    print "An empty program, from fork to exit: the median of " startup " runs of each command,"
    print "the commands taking turns, pinned like the servers. Peak RSS is the child's"
    print "`ru_maxrss`."
    print ""
    print "| command | median ms | fastest–slowest ms | peak RSS, MB | exit status |"
    print "|---|---:|---:|---:|---:|"
    for (i = 1; i <= n_startup; i++) {
      s = startup_order[i]
      printf "| `%s`%s | %s | %s | %s | %s |\n", cmd[s], s == "true" ? " (fork and exec alone)" : "",
        fmt("%.1f", med(s, "startup", "ms")),
        fmt("%.1f", med(s, "startup", "min_ms")) "–" fmt("%.1f", med(s, "startup", "max_ms")),
        fmt("%.1f", med(s, "startup", "rss_kb") / 1024), med(s, "startup", "rc")
    }
    print ""
  }

  for (i = 1; i <= ns; i++)
    if (bad[S[i]]) printf "%s: %d failed start(s), run(s) or death(s); see the log and runs/.\n\n", S[i], bad[S[i]]
  for (i = 1; i <= nmc; i++)
    if (bad[M[i]]) printf "%s: %d failed start(s), run(s) or death(s); see the log and runs/.\n\n", M[i], bad[M[i]]

  # ------------------------------------------------------------ targets
  # The targets of issue 5, item 6, checked against this run.
  if (index(" " servers " ", " luvhost ") == 0) exit
  t = 0
  for (j = 1; j <= nw; j++) {
    sc = W[j]
    us = med("luvhost", sc, "us_per_req"); rps = med("luvhost", sc, "rps")
    p99 = med("luvhost", sc, "p99_ms")
    nu = med("node", sc, "us_per_req"); lu = med("nginx-lua", sc, "us_per_req")
    lr = med("nginx-lua", sc, "rps"); np = med("node", sc, "p99_ms")
    if (us == "") continue
    lim = sc ~ /^ka/ ? 0.4 : 0.45
    if (nu != "") T[++t] = sprintf("| %s: server µs/req ≤ %.2f × node | %.2f × | %s |", sc, lim, us / nu, yes(us <= lim * nu))
    if (sc ~ /^ka/ && lu != "") T[++t] = sprintf("| %s: server µs/req ≤ nginx-lua | %.1f vs %.1f | %s |", sc, us, lu, yes(us <= lu))
    if (sc ~ /^ka/ && lr != "") T[++t] = sprintf("| %s: req/s ≥ nginx-lua | %.0f vs %.0f | %s |", sc, rps, lr, yes(rps >= lr))
    if (np != "") T[++t] = sprintf("| %s: p99 ≤ node | %.2f vs %.2f ms | %s |", sc, p99, np, yes(p99 <= np))
  }
  if (idle) {
    r1 = med("luvhost", "idle", "rss_kb." top)
    if (r1 != "" && top + 0 >= 10000)
      T[++t] = sprintf("| %s idle connections: RSS < 16 MB | %.1f MB | %s |", commas(top), r1 / 1024, yes(r1 < 16384))
  }
  if (!t) exit
  print "## Targets"
  print ""
  print "luvhost's targets (issue 5, one worker), judged on the medians above:"
  print ""
  print "| target | luvhost | met |"
  print "|---|---|---|"
  for (i = 1; i <= t; i++) print T[i]
  print ""
}
