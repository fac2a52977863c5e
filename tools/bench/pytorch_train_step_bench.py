# The same ConvNeXt V2 training step in PyTorch (the official model code structure: LayerNorm,
# GRN, Block, stem/downsample/stages, AdamW), for a side-by-side comparison with
# //tools/bench:train_step_bench. Usage: /usr/bin/python3 tools/bench/pytorch_train_step_bench.py BATCH SIZE plain|cl
# [retain] (cl: channels_last memory format; retain: glibc keeps freed memory, as the C++ binaries
# do by default). Prints the median ms/step of 6 timed steps (atto, 10 classes).
import torch, time, torch.nn as nn, torch.nn.functional as F, sys, ctypes
if len(sys.argv) > 4 and sys.argv[4] == "retain":
    libc = ctypes.CDLL("libc.so.6")
    assert libc.mallopt(-4, 0) == 1 and libc.mallopt(-1, 2**31 - 1) == 1  # M_MMAP_MAX, M_TRIM_THRESHOLD
torch.set_num_threads(2)
class LayerNorm(nn.Module):
    def __init__(s, n, eps=1e-6, data_format="channels_last"):
        super().__init__(); s.weight=nn.Parameter(torch.ones(n)); s.bias=nn.Parameter(torch.zeros(n)); s.eps=eps; s.df=data_format; s.ns=(n,)
    def forward(s,x):
        if s.df=="channels_last": return F.layer_norm(x,s.ns,s.weight,s.bias,s.eps)
        u=x.mean(1,keepdim=True); v=(x-u).pow(2).mean(1,keepdim=True); x=(x-u)/torch.sqrt(v+s.eps); return s.weight[:,None,None]*x+s.bias[:,None,None]
class GRN(nn.Module):
    def __init__(s,d): super().__init__(); s.gamma=nn.Parameter(torch.zeros(1,1,1,d)); s.beta=nn.Parameter(torch.zeros(1,1,1,d))
    def forward(s,x):
        Gx=torch.norm(x,p=2,dim=(1,2),keepdim=True); Nx=Gx/(Gx.mean(dim=-1,keepdim=True)+1e-6); return s.gamma*(x*Nx)+s.beta+x
class Block(nn.Module):
    def __init__(s,d):
        super().__init__(); s.dwconv=nn.Conv2d(d,d,7,padding=3,groups=d); s.norm=LayerNorm(d); s.pwconv1=nn.Linear(d,4*d); s.act=nn.GELU(); s.grn=GRN(4*d); s.pwconv2=nn.Linear(4*d,d)
    def forward(s,x):
        i=x; x=s.dwconv(x).permute(0,2,3,1); x=s.pwconv2(s.grn(s.act(s.pwconv1(s.norm(x))))); return i+x.permute(0,3,1,2)
class M(nn.Module):
    def __init__(s,depths=[2,2,6,2],dims=[40,80,160,320],nc=10):
        super().__init__(); s.ds=nn.ModuleList([nn.Sequential(nn.Conv2d(3,dims[0],4,4),LayerNorm(dims[0],data_format="channels_first"))]+[nn.Sequential(LayerNorm(dims[i],data_format="channels_first"),nn.Conv2d(dims[i],dims[i+1],2,2)) for i in range(3)])
        s.st=nn.ModuleList([nn.Sequential(*[Block(dims[i]) for _ in range(depths[i])]) for i in range(4)]); s.norm=nn.LayerNorm(dims[-1],eps=1e-6); s.head=nn.Linear(dims[-1],nc)
    def forward(s,x):
        for i in range(4): x=s.st[i](s.ds[i](x))
        return s.head(s.norm(x.mean([-2,-1])))
bs=int(sys.argv[1]); sz=int(sys.argv[2]); cl=sys.argv[3]=="cl"
m=M(); opt=torch.optim.AdamW(m.parameters(),lr=1e-3)
x=torch.randn(bs,3,sz,sz); y=torch.randint(0,10,(bs,))
if cl: m=m.to(memory_format=torch.channels_last); x=x.contiguous(memory_format=torch.channels_last)
ts=[]
for i in range(8):
    t=time.time(); l=F.cross_entropy(m(x),y); opt.zero_grad(); l.backward(); opt.step(); ts.append(time.time()-t)
print(sys.argv[1:], "ms/step %.1f"%(1000*sorted(ts[2:])[len(ts[2:])//2]))
