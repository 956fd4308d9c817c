-- The example `make run` starts. Until the HTTP module lands it greets on
-- a timer; it will become the HTTP hello-world server.
local count = 0
local timer
timer = setInterval(function()
  count = count + 1
  print(('Hello, World! (%d)'):format(count))
  if count == 3 then clearInterval(timer) end
end, 200)
