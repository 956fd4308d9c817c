-- DNS: uv.getaddrinfo/getnameinfo (luv-compatible, sync and async,
-- cancellable) and Node's dns module in coroutine and callback forms.
-- Only names answered without the network: localhost, IP literals, the
-- numeric forms getaddrinfo parses itself ('127.1'), and '.invalid' names,
-- which fail (EAI_NONAME where a resolver answers; EAI_AGAIN where there is
-- none, so both are accepted).

local helper = require('spec.helper')
local uv = require('uv')
local dns = require('dns')
local binding = require('internal.binding')

local run = helper.run

local NO_NAME = { EAI_NONAME = true, EAI_AGAIN = true }
local NOT_FOUND = { ENOTFOUND = true, EAI_AGAIN = true }

-- A mailbox for callbacks: box.put(...) from a callback, box.take() in the
-- body waits for the next value put.
local function mailbox()
  local items, taker = {}, nil
  local box = {}
  function box.put(...)
    items[#items + 1] = table.pack(...)
    if taker then
      local co = taker
      taker = nil
      binding.resume(co)
    end
  end
  function box.take()
    while #items == 0 do
      taker = coroutine.running()
      coroutine.yield()
    end
    local item = table.remove(items, 1)
    return table.unpack(item, 1, item.n)
  end
  return box
end

describe('uv.getaddrinfo', function()
  it('resolves localhost synchronously with hints', function()
    local res = uv.getaddrinfo('localhost', nil,
      { family = 'inet', socktype = 'stream' })
    assert.are.same({
      { addr = '127.0.0.1', family = 'inet', socktype = 'stream',
        protocol = 'tcp' },
    }, res)
  end)

  it('resolves a numeric host and service', function()
    local res = uv.getaddrinfo('127.0.0.1', '5353', {
      family = uv.constants.AF_INET, socktype = 'dgram', protocol = 'udp',
      numerichost = true, numericserv = true,
    })
    assert.are.same({
      { addr = '127.0.0.1', family = 'inet', port = 5353, socktype = 'dgram',
        protocol = 'udp' },
    }, res)
    res = uv.getaddrinfo('::1', nil, { numerichost = true, socktype = 'stream' })
    assert.are.equal('::1', res[1].addr)
    assert.are.equal('inet6', res[1].family)
    -- without a socktype hint, one entry per socket type
    res = uv.getaddrinfo('127.0.0.1', nil, { numerichost = true })
    local types = {}
    for _, ai in ipairs(res) do types[#types + 1] = ai.socktype end
    table.sort(types)
    assert.are.same({ 'dgram', 'raw', 'stream' }, types)
  end)

  it('gives the canonical name when asked', function()
    local res = uv.getaddrinfo('localhost', nil,
      { family = 'inet', socktype = 'stream', canonname = true })
    assert.are.equal('localhost', res[1].canonname)
  end)

  it('resolves asynchronously and returns the request', function()
    local box = mailbox()
    run(function()
      local req = uv.getaddrinfo('localhost', nil,
        { family = 'inet', socktype = 'stream' }, box.put)
      assert.matches('^uv_getaddrinfo_t: ', tostring(req))
      assert.are.equal('getaddrinfo', req:get_type())
      local err, res = box.take()
      assert.is_nil(err)
      assert.are.equal('127.0.0.1', res[1].addr)
      assert.are.equal('getaddrinfo', (uv.req_get_type(req)))
    end)
  end)

  it('fails with EAI_* names, synchronously and asynchronously', function()
    local ok, msg, name = uv.getaddrinfo('nosuch.invalid')
    assert.is_nil(ok)
    assert.is_true(NO_NAME[name], name)
    assert.are.equal(name .. ': ' .. uv.strerror(uv.errno[name]), msg)
    ok, msg, name = uv.getaddrinfo('localhost', nil, { numerichost = true })
    assert.is_nil(ok)
    assert.are.equal('EAI_NONAME', name)
    assert.are.equal('EINVAL', select(3, uv.getaddrinfo(nil, nil)))
    local box = mailbox()
    run(function()
      assert.is_userdata(uv.getaddrinfo('nosuch.invalid', nil, {}, box.put))
      local err, res = box.take()
      assert.is_true(NO_NAME[err], err)
      assert.is_nil(res)
    end)
  end)

  it('raises on bad arguments', function()
    assert.has_error(function() uv.getaddrinfo('localhost', nil, 'inet') end)
    assert.has_error(function()
      uv.getaddrinfo('localhost', nil, { family = 'bogus' })
    end, "bad argument #3 to 'getaddrinfo' (unknown family 'bogus')")
    assert.has_error(function()
      uv.getaddrinfo('localhost', nil, { socktype = true })
    end)
    assert.has_error(function()
      uv.getaddrinfo('localhost', nil, {}, 'not callable')
    end)
  end)

  it('can be cancelled while it waits for a thread', function()
    local box = mailbox()
    local dir, cleanup = helper.tmpdir()
    run(function()
      -- Occupy every pool thread with a FIFO open that blocks until a
      -- writer comes, so the lookups below surely wait in the queue.
      local threads = tonumber(os.getenv('UV_THREADPOOL_SIZE') or 4)
      local fifos = {}
      for t = 1, threads do
        fifos[t] = dir .. '/fifo' .. t
        assert(os.execute('mkfifo ' .. helper.quote(fifos[t])))
        uv.fs_open(fifos[t], 'r', 0, function(err, fd)
          box.put('fifo', err, fd)
        end)
      end
      local n = 8
      local reqs = {}
      for i = 1, n do
        reqs[i] = uv.getaddrinfo('localhost', nil, { socktype = 'stream' },
          function(err) box.put(i, err) end)
      end
      for i = n, 1, -1 do assert.are.equal(0, uv.cancel(reqs[i])) end
      -- Let the blocked opens finish: a writer for each FIFO.
      local writers = {}
      for t = 1, threads do writers[t] = assert(uv.fs_open(fifos[t], 'w', 0)) end
      local cancelled, opened = 0, 0
      for _ = 1, n + threads do
        local what, err, fd = box.take()
        if what == 'fifo' then
          assert.is_nil(err)
          uv.fs_close(fd)
          opened = opened + 1
        else
          assert.are.equal('EAI_CANCELED', err)
          cancelled = cancelled + 1
        end
      end
      for t = 1, threads do uv.fs_close(writers[t]) end
      assert.are.equal(n, cancelled)
      assert.are.equal(threads, opened)
      -- A finished request cannot be cancelled.
      assert.are.equal('EBUSY', select(3, uv.cancel(reqs[n])))
      assert.are.equal('EBUSY', select(3, reqs[1]:cancel()))
    end)
    cleanup()
  end)
end)

describe('uv.getnameinfo', function()
  it('names 127.0.0.1 synchronously and asynchronously', function()
    local host, service = uv.getnameinfo({ ip = '127.0.0.1', port = 80 })
    assert.are.equal('localhost', host)
    -- the name from /etc/services, or the number where it is missing
    assert.is_true(service == 'http' or service == '80', service)
    local box = mailbox()
    run(function()
      local req = uv.getnameinfo({ ip = '127.0.0.1', port = 22,
        family = 'inet' }, box.put)
      assert.matches('^uv_getnameinfo_t: ', tostring(req))
      local err, h, s = box.take()
      assert.is_nil(err)
      assert.are.equal('localhost', h)
      assert.is_true(s == 'ssh' or s == '22', s)
    end)
  end)

  it('returns failures as values and raises on bad arguments', function()
    assert.are.equal('EINVAL', select(3, uv.getnameinfo({ ip = 'nope' })))
    assert.are.equal('EINVAL', select(3, uv.getnameinfo({})))
    assert.has_error(function() uv.getnameinfo('127.0.0.1') end)
    assert.has_error(function() uv.getnameinfo({ ip = 1 }) end)
    assert.has_error(function() uv.getnameinfo({ port = 70000 }) end)
    assert.has_error(function() uv.getnameinfo({ ip = '127.0.0.1' }, 1) end)
  end)
end)

describe('dns.lookup', function()
  it('resolves localhost without the resolver, per family', function()
    run(function()
      assert.are.same({ '127.0.0.1', 4 }, { dns.lookup('localhost') })
      assert.are.same({ '::1', 6 }, { dns.lookup('localhost', 6) })
      assert.are.same({ '127.0.0.1', 4 },
        { dns.lookup('LocalHost.', { family = 4 }) })
      assert.are.same({ '::1', 6 },
        { dns.lookup('api.localhost', { family = 'IPv6' }) })
      assert.are.same({
        { address = '127.0.0.1', family = 4 },
        { address = '::1', family = 6 },
      }, dns.lookup('localhost', { all = true }))
    end)
  end)

  it('returns IP literals as they are', function()
    run(function()
      assert.are.same({ '10.1.2.3', 4 }, { dns.lookup('10.1.2.3') })
      assert.are.same({ 'fe80::1', 6 }, { dns.lookup('fe80::1', 4) })
      assert.are.same({ { address = '::1', family = 6 } },
        dns.lookup('::1', { all = true }))
    end)
  end)

  it('asks getaddrinfo for other names', function()
    run(function()
      -- getaddrinfo reads '127.1' as 127.0.0.1 by itself (inet_aton)
      assert.are.same({ '127.0.0.1', 4 }, { dns.lookup('127.1') })
      assert.are.same({ { address = '127.0.0.1', family = 4 } },
        dns.lookup('127.1', { all = true, family = 4 }))
    end)
  end)

  it('calls back later with a callback', function()
    local box = mailbox()
    run(function()
      local returned = false
      dns.lookup('localhost', function(err, address, family)
        box.put(returned, err, address, family)
      end)
      returned = true
      assert.are.same({ true, nil, '127.0.0.1', 4 }, { box.take() })
      dns.lookup('127.1', { family = 4 }, function(...) box.put(...) end)
      assert.are.same({ nil, '127.0.0.1', 4 }, { box.take() })
      dns.lookup('localhost', { all = true }, function(...) box.put(...) end)
      local err, list = box.take()
      assert.is_nil(err)
      assert.are.equal(2, #list)
    end)
  end)

  it('returns a Node-shaped error for a name that does not exist', function()
    local box = mailbox()
    run(function()
      local address, err = dns.lookup('nosuch.invalid')
      assert.is_nil(address)
      assert.is_true(NOT_FOUND[err.code], err.code)
      assert.are.equal('getaddrinfo', err.syscall)
      assert.are.equal('nosuch.invalid', err.hostname)
      assert.are.equal('getaddrinfo ' .. err.code .. ' nosuch.invalid',
        err.message)
      assert.are.equal(err.message, tostring(err))
      assert.is_number(err.errno)
      dns.lookup('nosuch.invalid', { all = true }, box.put)
      local cb_err, list = box.take()
      assert.are.equal(err.code, cb_err.code)
      assert.is_nil(list)
    end)
  end)

  it('raises on misuse and where it cannot wait', function()
    assert.has_error(function() dns.lookup(42) end,
      'dns.lookup: hostname must be a string, got number')
    assert.has_error(function() dns.lookup('localhost', 5) end,
      'dns.lookup: family must be 0, 4 or 6, got 5')
    assert.has_error(function() dns.lookup('localhost', {}, 'cb') end)
    local ok, err = pcall(string.gsub, 'a', 'a', function()
      dns.lookup('localhost')
    end)
    assert.is_false(ok)
    assert.matches('dns.lookup: cannot wait here', err)
  end)
end)

describe('dns.resolve4 and dns.resolve6', function()
  it('give the addresses of a family', function()
    local box = mailbox()
    run(function()
      assert.are.same({ '127.0.0.1' }, dns.resolve4('localhost'))
      assert.are.same({ '::1' }, dns.resolve6('localhost'))
      assert.are.same({ '127.0.0.1' }, dns.resolve4('127.1'))
      assert.are.same({ '::1' }, dns.resolve6('::1'))
      dns.resolve4('localhost', box.put)
      assert.are.same({ nil, { '127.0.0.1' } }, { box.take() })
      dns.resolve6('localhost', {}, box.put)
      assert.are.same({ nil, { '::1' } }, { box.take() })
    end)
  end)

  it('report failures with their query name', function()
    local box = mailbox()
    run(function()
      local list, err = dns.resolve4('nosuch.invalid')
      assert.is_nil(list)
      assert.is_true(NOT_FOUND[err.code], err.code)
      assert.are.equal('queryA', err.syscall)
      assert.are.equal('queryA ' .. err.code .. ' nosuch.invalid',
        tostring(err))
      dns.resolve6('nosuch.invalid', box.put)
      assert.are.equal('queryAaaa', box.take().syscall)
    end)
  end)
end)

describe('dns.lookupService', function()
  it('names an address and port', function()
    local box = mailbox()
    run(function()
      local host, service = dns.lookupService('127.0.0.1', 22)
      assert.are.equal('localhost', host)
      assert.is_true(service == 'ssh' or service == '22', service)
      dns.lookupService('127.0.0.1', 22, box.put)
      assert.are.same({ nil, host, service }, { box.take() })
    end)
  end)

  it('raises on a bad address or port', function()
    assert.has_error(function() dns.lookupService('localhost', 22) end,
      'dns.lookupService: address must be an IP address, got localhost')
    assert.has_error(function() dns.lookupService('127.0.0.1', 65536) end,
      'dns.lookupService: port must be an integer from 0 to 65535, got 65536')
    assert.has_error(function() dns.lookupService('127.0.0.1', 'x') end)
  end)
end)

describe('dns.isIP', function()
  it('tells IPv4 from IPv6 from names', function()
    assert.are.equal(4, dns.isIP('127.0.0.1'))
    assert.are.equal(6, dns.isIP('::ffff:127.0.0.1'))
    assert.are.equal(0, dns.isIP('256.1.1.1'))
    assert.are.equal(0, dns.isIP('127.1'))
    assert.are.equal(0, dns.isIP('localhost'))
    assert.are.equal(0, dns.isIP(':::'))
    assert.are.equal(0, dns.isIP(nil))
  end)
end)
