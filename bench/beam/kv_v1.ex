# The seed's key-value server, version "1": version "0" plus the logging patch, one
# Logger.info line for each get and each put ("get a -> 42", "put a = 42"), calls and casts
# alike (what guests/rust/kv-v1 is on hotswap). Same requests, same state shape.
defmodule KV do
  use GenServer
  require Logger
  @vsn "1"

  def start(entries \\ %{}), do: GenServer.start(__MODULE__, entries)

  @impl true
  def init(entries), do: {:ok, %{entries: entries}}

  @impl true
  def handle_call(request, _from, state) do
    {reply, state} = serve(request, state)
    {:reply, reply, state}
  end

  @impl true
  def handle_cast(message, state), do: {:noreply, apply_message(message, state)}

  @impl true
  def handle_info(message, state), do: {:noreply, apply_message(message, state)}

  # An upgrade from "0" (old_vsn "0"): the state has the same shape, keep it.
  @impl true
  def code_change(_old_vsn, state, _extra), do: {:ok, state}

  defp apply_message({:put, _, _} = request, state), do: elem(serve(request, state), 1)
  defp apply_message({:delete, _} = request, state), do: elem(serve(request, state), 1)
  defp apply_message(_other, state), do: state

  defp serve({:put, key, value}, %{entries: entries} = state) do
    Logger.info("put #{key} = #{inspect(value)}")
    {Map.get(entries, key), %{state | entries: Map.put(entries, key, value)}}
  end

  defp serve({:get, key}, %{entries: entries} = state) do
    value = Map.get(entries, key)
    Logger.info("get #{key} -> #{inspect(value)}")
    {value, state}
  end

  defp serve({:delete, key}, %{entries: entries} = state),
    do: {Map.get(entries, key), %{state | entries: Map.delete(entries, key)}}

  defp serve(:keys, %{entries: entries} = state), do: {entries |> Map.keys() |> Enum.sort(), state}
  defp serve(:count, %{entries: entries} = state), do: {map_size(entries), state}
  defp serve(other, state), do: {{:error, {:unknown_request, other}}, state}
end
