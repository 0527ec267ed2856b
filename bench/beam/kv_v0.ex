# The seed's key-value server as an Elixir GenServer, version "0" (what guests/rust/kv-v0 is
# on hotswap). Requests are Elixir terms, not JSON: {:put, key, value}, {:get, key},
# {:delete, key}, :keys, :count; casts and infos apply put and delete. The state is
# %{entries: map} in every version, so code_change/3 keeps it as it is, both ways.
defmodule KV do
  use GenServer
  @vsn "0"

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

  # A downgrade from "1" (old_vsn {:down, "1"}): the state has the same shape, keep it.
  @impl true
  def code_change(_old_vsn, state, _extra), do: {:ok, state}

  defp apply_message({:put, _, _} = request, state), do: elem(serve(request, state), 1)
  defp apply_message({:delete, _} = request, state), do: elem(serve(request, state), 1)
  defp apply_message(_other, state), do: state

  defp serve({:put, key, value}, %{entries: entries} = state),
    do: {Map.get(entries, key), %{state | entries: Map.put(entries, key, value)}}

  defp serve({:get, key}, %{entries: entries} = state), do: {Map.get(entries, key), state}

  defp serve({:delete, key}, %{entries: entries} = state),
    do: {Map.get(entries, key), %{state | entries: Map.delete(entries, key)}}

  defp serve(:keys, %{entries: entries} = state), do: {entries |> Map.keys() |> Enum.sort(), state}
  defp serve(:count, %{entries: entries} = state), do: {map_size(entries), state}
  defp serve(other, state), do: {{:error, {:unknown_request, other}}, state}
end
