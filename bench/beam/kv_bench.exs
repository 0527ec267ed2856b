# The BEAM side of `just bench`: the seed's KV (kv_v0.ex, kv_v1.ex) as an Elixir GenServer,
# measured the way bench/src/scenarios.rs measures hotswap. Run by scripts/bench-beam.sh:
#
#     elixir bench/beam/kv_bench.exs [out.json]
#
# Environment: BEAM_BENCH_QUICK=1 for a smoke run (a tenth of the samples);
# BEAM_BENCH_LOAD=file to read the new version's .beam from disk inside the pause
# (:code.load_abs, like code:load_file) instead of :code.load_binary of a binary in memory.

# v1 logs every get and put with Logger.info; at level :warning those calls are dropped at the
# call site (Logger's level check), so nothing is printed and no message is formatted.
Logger.configure(level: :warning)
Code.compiler_options(ignore_module_conflict: true)

defmodule Bench.Json do
  @moduledoc "Just enough JSON for the report: keyword lists are objects, in their order."

  def encode(value), do: IO.iodata_to_binary(enc(value))

  defp enc(nil), do: "null"
  defp enc(true), do: "true"
  defp enc(false), do: "false"
  defp enc(n) when is_integer(n), do: Integer.to_string(n)
  defp enc(f) when is_float(f), do: :erlang.float_to_binary(f, [:short])
  defp enc(a) when is_atom(a), do: enc(Atom.to_string(a))
  defp enc(s) when is_binary(s), do: [?", escape(s), ?"]
  defp enc(%{} = map), do: enc(Enum.sort(Map.to_list(map)))
  defp enc([{k, _} | _] = kw) when is_atom(k) or is_binary(k),
    do: [?{, Enum.map_intersperse(kw, ?,, fn {k, v} -> [enc(k), ?:, enc(v)] end), ?}]
  defp enc(list) when is_list(list), do: [?[, Enum.map_intersperse(list, ?,, &enc/1), ?]]

  defp escape(s) do
    for <<c::utf8 <- s>>, into: "" do
      case c do
        ?" -> "\\\""
        ?\\ -> "\\\\"
        c when c < 0x20 -> "\\u" <> String.pad_leading(Integer.to_string(c, 16), 4, "0")
        c -> <<c::utf8>>
      end
    end
  end
end

defmodule Bench.Stats do
  @moduledoc "Percentiles as bench/src/stats.rs takes them: sorted samples, index round((n-1)*q)."

  def latency(name, samples_ns) do
    sorted = samples_ns |> Enum.sort() |> List.to_tuple()
    n = tuple_size(sorted)
    at = fn q -> us(elem(sorted, round((n - 1) * q))) end

    [
      name: name,
      unit: "us",
      p50: at.(0.50),
      p99: at.(0.99),
      p999: at.(0.999),
      max: us(elem(sorted, n - 1)),
      mean: Float.round(Enum.sum(samples_ns) / n / 1000, 3),
      n: n
    ]
  end

  def us(ns), do: Float.round(ns / 1000, 3)

  # The median of per-round rates (the mean of the middle two for an even count), and their
  # spread, as bench/src/stats.rs takes them.
  def median_of(rates) do
    sorted = Enum.sort(rates)
    n = length(sorted)
    mid = div(n, 2)

    median =
      if rem(n, 2) == 1,
        do: Enum.at(sorted, mid),
        else: (Enum.at(sorted, mid - 1) + Enum.at(sorted, mid)) / 2

    {Float.round(median, 1), [n: n, min: Float.round(hd(sorted), 1), max: Float.round(List.last(sorted), 1)]}
  end

  # Only the keys that the schema gives a metric.
  def only(metric, keys), do: Enum.filter(metric, fn {k, _} -> k in [:name, :unit | keys] end)
end

defmodule Bench do
  alias Bench.Stats

  @dir Path.dirname(__ENV__.file)
  @call_timeout 10_000

  def now, do: :erlang.monotonic_time(:nanosecond)
  def scale, do: if(System.get_env("BEAM_BENCH_QUICK") in [nil, "", "0"], do: 1, else: 10)
  def log(msg), do: IO.puts(:stderr, msg)

  # ---- the two versions of KV ----------------------------------------------------------------

  # Compiles kv_v0.ex and kv_v1.ex once; a swap loads one of these binaries.
  def versions do
    compile = fn file ->
      path = Path.join(@dir, file)
      [{KV, bin}] = Code.compile_string(File.read!(path), path)
      beam_dir = Path.join(System.tmp_dir!(), "beam-bench-#{System.pid()}-#{Path.rootname(file)}")
      File.mkdir_p!(beam_dir)
      File.write!(Path.join(beam_dir, "Elixir.KV.beam"), bin)
      %{bin: bin, file: String.to_charlist(path), abs: String.to_charlist(Path.join(beam_dir, "Elixir.KV"))}
    end

    v = %{v0: compile.("kv_v0.ex"), v1: compile.("kv_v1.ex")}
    reset(v)
    v
  end

  # KV at v0, with no old code.
  def reset(v) do
    :code.purge(KV)
    :code.delete(KV)
    :code.purge(KV)
    {:module, KV} = :code.load_binary(KV, v.v0.file, v.v0.bin)
    "0" = vsn()
  end

  def vsn do
    [vsn] = Keyword.fetch!(KV.module_info(:attributes), :vsn)
    vsn
  end

  def cleanup(v) do
    for %{abs: abs} <- Map.values(v), do: File.rm_rf!(Path.dirname(to_string(abs)))
  end

  # The seed's swap of a running KV, swap number `i` (even: "0" -> "1", odd: back down), as
  # the seed does it: suspend, purge the old code, load the new version, change_code, resume.
  # Returns the unavailability in ns: from the suspend to the return of resume.
  # soft_purge removes the version two swaps back; KV's process never runs it (between
  # messages it sits in gen_server/sys code, and every call into KV is a remote call, so after
  # change_code it runs the current code), so the purge must succeed and kill nobody.
  def swap(pid, i, v) do
    {to, old_vsn} = if rem(i, 2) == 0, do: {v.v1, "0"}, else: {v.v0, {:down, "1"}}
    from_disk = System.get_env("BEAM_BENCH_LOAD") == "file"
    t0 = now()
    :ok = :sys.suspend(pid)
    true = :code.soft_purge(KV)

    {:module, KV} =
      if from_disk, do: :code.load_abs(to.abs), else: :code.load_binary(KV, to.file, to.bin)

    :ok = :sys.change_code(pid, KV, old_vsn, [])
    :ok = :sys.resume(pid)
    now() - t0
  end

  # ---- clients -------------------------------------------------------------------------------

  # `clients` processes run `body.(client, record)` at once; `record.(ns)` keeps one sample
  # (in an :atomics array, so that keeping it allocates nothing). Returns the samples, what
  # each body returned, and the wall time from the spawn of the first client to the last's end.
  def run_clients(clients, capacity, body) do
    parent = self()
    t0 = now()

    pids =
      for c <- 1..clients do
        spawn_link(fn ->
          samples = :atomics.new(capacity, signed: true)
          count = :counters.new(1, [])

          record = fn ns ->
            :counters.add(count, 1, 1)
            i = :counters.get(count, 1)
            if i <= capacity, do: :atomics.put(samples, i, ns)
          end

          result = body.(c, record)
          send(parent, {:client_done, self(), samples, min(:counters.get(count, 1), capacity), result})
        end)
      end

    done = for pid <- pids, do: receive(do: ({:client_done, ^pid, s, n, r} -> {s, n, r}))
    elapsed = now() - t0
    samples = Enum.flat_map(done, fn {s, n, _} -> for i <- 1..n//1, do: :atomics.get(s, i) end)
    {samples, Enum.map(done, &elem(&1, 2)), elapsed}
  end

  # ---- the measurements ----------------------------------------------------------------------

  # How many rounds each messaging figure is measured in; its rate is their median.
  @rounds 5

  # Round trip of `get` calls from `clients` concurrent callers, `calls` in each round: the
  # percentiles of every call, the throughput of the median round.
  def call_rtt(clients, calls) do
    {:ok, pid} = KV.start()
    nil = GenServer.call(pid, {:put, "a", 1})
    for _ <- 1..div(calls, 10), do: 1 = GenServer.call(pid, {:get, "a"})
    per = div(calls, clients)

    rounds =
      for _ <- 1..@rounds do
        {samples, _, elapsed} =
          run_clients(clients, per, fn _, record ->
            Enum.each(1..per, fn _ ->
              t = now()
              1 = GenServer.call(pid, {:get, "a"}, @call_timeout)
              record.(now() - t)
            end)
          end)

        {samples, length(samples) / (elapsed / 1.0e9)}
      end

    Process.exit(pid, :kill)
    metric = Stats.latency("call_rtt_#{clients}", Enum.flat_map(rounds, &elem(&1, 0)))
    {throughput, spread} = Stats.median_of(Enum.map(rounds, &elem(&1, 1)))
    Stats.only(metric, [:p50, :p99, :mean, :n]) ++ [throughput_per_s: throughput, rounds: spread]
  end

  # Casts per second, end to end, in each round: n casts of put, then one call that returns
  # once all are served; the median round's rate.
  def cast_throughput(n) do
    {:ok, pid} = KV.start()
    cast_loop(pid, 0, div(n, 10))
    _ = GenServer.call(pid, {:get, "k"}, 120_000)

    # Each round puts values no earlier round did, so that reading its last one back says
    # that this round's casts were all served.
    rates =
      for round <- 0..(@rounds - 1) do
        first = round * n
        t0 = now()
        cast_loop(pid, first, first + n)
        last = GenServer.call(pid, {:get, "k"}, 120_000)
        elapsed = now() - t0
        if last != first + n - 1, do: raise("casts were lost: the last put is not the one read")
        n / (elapsed / 1.0e9)
      end

    Process.exit(pid, :kill)
    {rate, spread} = Stats.median_of(rates)
    [name: "cast_throughput", unit: "per_s", value: rate, n: n * @rounds, rounds: spread]
  end

  defp cast_loop(_pid, i, n) when i >= n, do: :ok

  defp cast_loop(pid, i, n) do
    GenServer.cast(pid, {:put, "k", i})
    cast_loop(pid, i + 1, n)
  end

  # The state the Rust side's fill gives: "k000000" => 0, "k000001" => 1, ...
  def entries(keys), do: Map.new(0..(keys - 1)//1, fn i -> {key(i), i} end)
  defp key(i), do: "k" <> String.pad_leading(Integer.to_string(i), 6, "0")

  # The state's size as JSON, as the Rust guest's snapshot writes it ({"entries":{...}}).
  def json_bytes(entries), do: byte_size(Bench.Json.encode([entries: entries]))

  # The pause of `swaps` swaps, alternating "0" -> "1" and back, of a KV holding `keys` keys.
  # Every purge makes the VM scan the heap of every process for references into the purged
  # code's literals, so the state is built in a short-lived process and this one keeps no copy:
  # the only big heap in the VM is the KV's.
  def swap_pause(name, keys, swaps, v) do
    reset(v)

    {pid, bytes} =
      in_temp_process(fn ->
        entries = entries(keys)
        {:ok, pid} = KV.start(entries)
        {pid, json_bytes(entries)}
      end)

    :erlang.garbage_collect()
    for i <- 0..19, do: swap(pid, i, v)
    samples = for i <- 0..(swaps - 1), do: swap(pid, i, v)
    if rem(swaps, 2) != 0, do: swap(pid, swaps, v)
    # The process survived every purge, on the current code, with its state.
    true = Process.alive?(pid)
    "0" = vsn()
    ^keys = GenServer.call(pid, :count)
    last = keys - 1
    ^last = GenServer.call(pid, {:get, key(last)})
    {:heap_size, heap_words} = Process.info(pid, :heap_size)
    Process.exit(pid, :kill)
    metric = Stats.latency(name, samples)
    log("  #{name}: #{keys} keys, #{bytes} bytes as JSON, KV heap #{heap_words * 8} bytes")
    Stats.only(metric, [:p50, :p99, :max, :n]) ++ [state_bytes: bytes]
  end

  defp in_temp_process(fun) do
    parent = self()
    pid = spawn_link(fn -> send(parent, {:temp_done, self(), fun.()}) end)
    receive(do: ({:temp_done, ^pid, result} -> result))
  end

  # Call latency from 4 clients (each puts its own counter and checks the previous value comes
  # back) for duration_ms; with swaps, while the process is swapped every 10 ms
  # (latency_under_swaps), else on the current code alone (latency_under_load: what the same
  # load costs without swaps). A call that times out, fails, or replies anything but the
  # previous value, and any late or extra reply, counts as lost.
  def latency_under_load(duration_ms, v, swaps: swaps) do
    name = if swaps, do: "latency_under_swaps", else: "latency_under_load"
    reset(v)
    :erlang.garbage_collect()
    {:ok, pid} = KV.start()
    deadline = now() + duration_ms * 1_000_000
    main = self()

    if swaps do
      spawn_link(fn ->
        result = swap_every(pid, v, now(), 0, deadline, [])
        send(main, {:swapper_done, result})
      end)
    end

    {samples, lost_per_client, _} =
      run_clients(4, 4_000_000, fn c, record ->
        key = "c#{c}"

        lost =
          Enum.reduce_while(Stream.iterate(0, &(&1 + 1)), 0, fn n, lost ->
            if now() >= deadline do
              {:halt, lost}
            else
              t = now()

              reply =
                try do
                  {:ok, GenServer.call(pid, {:put, key, n}, @call_timeout)}
                catch
                  :exit, _ -> :lost
                end

              record.(now() - t)
              expected = if n == 0, do: nil, else: n - 1
              {:cont, if(reply == {:ok, expected}, do: lost, else: lost + 1)}
            end
          end)

        lost + flush_replies(0)
      end)

    swapped =
      if swaps do
        {swapped, pauses} = receive(do: ({:swapper_done, result} -> result))
        pause = Stats.latency("pauses", pauses)
        log("  #{name}: #{swapped} swaps, pause p50 #{pause[:p50]} p99 #{pause[:p99]} max #{pause[:max]} us")
        swapped
      else
        0
      end

    true = Process.alive?(pid)
    Process.exit(pid, :kill)
    lost = Enum.sum(lost_per_client)
    metric = Stats.latency(name, samples)
    Stats.only(metric, [:p50, :p99, :p999, :max, :n]) ++ [lost: lost, swaps: swapped]
  end

  # Replies that arrived after their call gave up, or twice: none expected.
  defp flush_replies(n) do
    receive do
      {ref, _} when is_reference(ref) -> flush_replies(n + 1)
      [:alias | ref] when is_reference(ref) -> flush_replies(n + 1)
    after
      0 -> n
    end
  end

  defp swap_every(pid, v, t0, i, deadline, pauses) do
    tick = t0 + (i + 1) * 10_000_000

    if tick >= deadline do
      if rem(i, 2) != 0, do: swap(pid, i, v)
      {i, pauses}
    else
      wait_ms = div(max(tick - now(), 0), 1_000_000)
      receive after: (wait_ms -> :ok)
      swap_every(pid, v, t0, i + 1, deadline, [swap(pid, i, v) | pauses])
    end
  end

  # n KV servers with empty state, started one after another; returns them and the rate.
  def start_many(n) do
    t0 = now()
    pids = for _ <- 1..n, do: elem(KV.start(), 1)
    {pids, n / ((now() - t0) / 1.0e9)}
  end

  def stop_all(pids) do
    refs = for pid <- pids, do: Process.monitor(pid)
    Enum.each(pids, &Process.exit(&1, :kill))
    for ref <- refs, do: receive(do: ({:DOWN, ^ref, _, _, _} -> :ok))
    :erlang.garbage_collect()
    :ok
  end

  def spawn_rate(n) do
    {warm, _} = start_many(div(n, 10))
    stop_all(warm)
    {pids, rate} = start_many(n)
    stop_all(pids)
    [name: "spawn_rate", unit: "per_s", value: Float.round(rate, 1), n: n]
  end

  # Resident memory per idle KV server: the RSS delta of a fresh BEAM (/proc/self/statm, as the
  # Rust side measures its host) once n servers are started in it; erlang:memory(processes) is
  # reported beside it. A fresh VM each time, because the allocators keep the carriers that
  # earlier phases freed, which would hide the cost of new processes from the RSS. Also the
  # spawn rate of those n (the Rust side's spawn_rate_10k / _100k).
  def memory(n) do
    elixir = System.find_executable("elixir") || raise "elixir is not on PATH"
    {out, 0} = System.cmd(elixir, [@dir |> Path.join("kv_bench.exs"), "--memory", "#{n}"])
    [per_rss, per_proc, rate, one] = out |> String.split() |> Enum.take(-4) |> Enum.map(&String.to_float/1)
    k = div(n, 1000)
    log("  #{n} idle KV servers: RSS #{per_rss} B each, erlang:memory(processes) #{per_proc} B each, process_info(:memory) #{round(one)} B")

    [
      [name: "memory_per_idle_process_#{k}k", unit: "bytes", value: per_rss, n: n,
       method: "RSS delta of a fresh BEAM (/proc/self/statm) / processes; erlang:memory(processes) delta / processes = #{per_proc}"],
      [name: "spawn_rate_#{k}k", unit: "per_s", value: rate, n: n]
    ]
  end

  # The spawn rate when each of k processes starts its share of n KV servers at once (the
  # Rust side's spawn_rate_per_core_*, which spawns from one task per worker thread), in a fresh
  # VM. k is BEAM_BENCH_SPAWNERS (the Rust side sets its worker count there), or one per
  # scheduler.
  def spawn_per_core(n) do
    elixir = System.find_executable("elixir") || raise "elixir is not on PATH"
    {out, 0} = System.cmd(elixir, [@dir |> Path.join("kv_bench.exs"), "--spawn-per-core", "#{n}"])
    [spawners, rate] = out |> String.split() |> Enum.take(-2)
    {spawners, rate} = {String.to_integer(spawners), String.to_float(rate)}
    log("  #{n} KV servers started by #{spawners} processes at once: #{rate}/s")

    [
      name: "spawn_rate_per_core_#{div(n, 1000)}k", unit: "per_s", value: rate, n: n,
      method: "#{n} servers started by #{spawners} processes at once"
    ]
  end

  def spawn_per_core_child(n) do
    cleanup(versions())

    spawners =
      case System.get_env("BEAM_BENCH_SPAWNERS") do
        nil -> System.schedulers_online()
        k -> String.to_integer(k)
      end

    parent = self()
    t0 = now()

    for spawner <- 0..(spawners - 1) do
      share = div(n, spawners) + if(spawner < rem(n, spawners), do: 1, else: 0)

      spawn_link(fn ->
        pids = for _ <- 1..share//1, do: elem(KV.start(), 1)
        # The end of this spawner's work, before its pids are copied to the parent.
        send(parent, {:started, now(), pids})
      end)
    end

    {ends, pids} =
      Enum.map(1..spawners, fn _ -> receive(do: ({:started, t1, pids} -> {t1, pids})) end)
      |> Enum.unzip()

    rate = length(List.flatten(pids)) / ((Enum.max(ends) - t0) / 1.0e9)
    stop_all(List.flatten(pids))
    IO.puts("#{spawners} #{Float.round(rate, 1)}")
  end

  # In a fresh VM: start n idle KV servers and print RSS and process memory per server, the
  # spawn rate, and one server's process_info(memory).
  def memory_child(n) do
    cleanup(versions())
    :erlang.garbage_collect()
    Process.sleep(200)
    {rss0, proc0} = {rss(), :erlang.memory(:processes)}
    {pids, rate} = start_many(n)
    Process.sleep(200)
    {rss1, proc1} = {rss(), :erlang.memory(:processes)}
    {:memory, one} = Process.info(hd(pids), :memory)
    per = fn delta -> Float.round(delta / n, 1) end
    IO.puts("#{per.(rss1 - rss0)} #{per.(proc1 - proc0)} #{Float.round(rate, 1)} #{one / 1}")
  end

  defp rss do
    [_, resident | _] = File.read!("/proc/self/statm") |> String.split()
    String.to_integer(resident) * 4096
  end

  # ---- the run -------------------------------------------------------------------------------

  # The groups, in the order a whole run takes them; `--only` runs some of them, as
  # `hotswap-bench --with-beam` does right before each of its own.
  @groups ["messaging", "swaps", "processes"]

  defp group("messaging", s, _v) do
    # Per round.
    [call_rtt(1, div(80_000, s)), call_rtt(2, div(80_000, s)), cast_throughput(div(200_000, s))]
  end

  defp group("swaps", s, v) do
    [
      swap_pause("swap_pause_1kib", div(1024, 17), div(200, s), v),
      swap_pause("swap_pause_1mib", div(100_000, s), div(200, s), v),
      latency_under_load(if(s == 1, do: 5_000, else: 1_000), v, swaps: false),
      latency_under_load(if(s == 1, do: 5_000, else: 1_000), v, swaps: true)
    ]
  end

  defp group("processes", s, _v) do
    [spawn_rate(div(50_000, s)) | memory(div(10_000, s)) ++ memory(div(100_000, s))] ++
      [spawn_per_core(div(100_000, s))]
  end

  def run(groups, out) do
    started = now()
    s = scale()
    v = versions()

    metrics =
      Enum.flat_map(groups, fn name ->
        log("#{name} ...")
        group(name, s, v)
      end)

    cleanup(v)

    report = [
      runtime: "beam",
      otp: to_string(:erlang.system_info(:otp_release)),
      elixir: System.version(),
      machine: [cores: :erlang.system_info(:logical_processors_available)],
      metrics: metrics
    ]

    File.mkdir_p!(Path.dirname(out))
    File.write!(out, Bench.Json.encode(report) <> "\n")
    print(metrics)
    IO.puts("written to #{out} in #{Float.round((now() - started) / 1.0e9, 1)} s")
  end

  def main(["--only", groups, out]) do
    groups = groups |> String.split(",", trim: true) |> Enum.uniq()

    case groups -- @groups do
      [] when groups != [] ->
        run(groups, out)

      [] ->
        log("kv_bench: --only needs a group (the groups: #{Enum.join(@groups, ", ")})")
        System.halt(2)

      unknown ->
        log("kv_bench: no such group: #{Enum.join(unknown, ", ")} (the groups: #{Enum.join(@groups, ", ")})")
        System.halt(2)
    end
  end

  def main(["--only" | _]) do
    log("kv_bench: usage: kv_bench.exs --only GROUP[,GROUP] OUT.json (the groups: #{Enum.join(@groups, ", ")})")
    System.halt(2)
  end

  def main([out]), do: run(@groups, out)
  def main(["--memory", n]), do: memory_child(String.to_integer(n))
  def main(["--spawn-per-core", n]), do: spawn_per_core_child(String.to_integer(n))
  def main(_), do: main(["target/bench/beam.json"])

  defp print(metrics) do
    cols = [:p50, :p99, :p999, :max, :mean, :value, :throughput_per_s]
    IO.puts(Enum.map_join(["metric", "unit" | Enum.map(cols, &to_string/1)], " ", &String.pad_leading(&1, 12)))

    for m <- metrics do
      row = [m[:name], m[:unit] | Enum.map(cols, &if(m[&1], do: to_string(m[&1]), else: "-"))]
      extra = Enum.map_join([:n, :state_bytes, :lost, :swaps], " ", &if(m[&1], do: "#{&1}=#{m[&1]}", else: ""))
      IO.puts(Enum.map_join(row, " ", &String.pad_leading(&1, 12)) <> "  " <> String.trim(extra))
    end
  end
end

Bench.main(System.argv())
