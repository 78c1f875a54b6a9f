#!/usr/bin/env python3
# Host-side check of src/backend/cuda/flash_attn_mma.cu's index arithmetic (pure Python, no GPU):
#  1. ldmatrix (.x4, .trans) and mma.m16n8k16 emulated from the PTX ISA fragment tables, driven by
#     the kernel's exact lane -> (row, column) address formulas: S = Q K^T, O += P V with P taken
#     from the S accumulators, S^T = K Q^T, dV += P^T dO, dQ = dS K with dS^T read transposed.
#     Each prints its max error against a plain matrix product (~1e-14 when the layouts agree),
#     for head_dim 16, 32, 64 and 128 (hd 16: phase 2's single n8 tile through ldmatrix .x2),
#     plus the ldmatrix bank-conflict-free row stride ("layout bad 0").
#  2. The forward's key-tile range / per-warp skip / need_mask conditions and the backward's
#     query-tile range against key_visible, for many segment lengths and windows ("bad 0").
# Run: python3 tests/ops/flash_attn_mma_layouts.py  (after changing any index in the kernels).
import random
random.seed(0)
class M:
    def __init__(s,r,c,f=None): s.r,s.c=r,c; s.d=[[ (f() if f else 0.0) for _ in range(c)] for _ in range(r)]
def randn(r,c): return M(r,c,lambda: random.gauss(0,1))
def matmul(A,B):
    R=M(A.r,B.c)
    for i in range(A.r):
        for j in range(B.c): R.d[i][j]=sum(A.d[i][k]*B.d[k][j] for k in range(A.c))
    return R
def T(A):
    R=M(A.c,A.r)
    for i in range(A.r):
        for j in range(A.c): R.d[j][i]=A.d[i][j]
    return R
def sub(A,r0,r1,c0,c1):
    R=M(r1-r0,c1-c0)
    for i in range(r0,r1):
        for j in range(c0,c1): R.d[i-r0][j-c0]=A.d[i][j]
    return R
def maxerr(A,B): return max(abs(A.d[i][j]-B.d[i][j]) for i in range(A.r) for j in range(A.c))
def frag(): return [[0.0]*4 for _ in range(32)]
def ldmatrix_x4(X, addr, trans=False):
    rows=[addr(l) for l in range(32)]
    regs=[[[0,0] for _ in range(4)] for _ in range(32)]
    for i in range(4):
        m=[X.d[r][c:c+8] for (r,c) in rows[8*i:8*i+8]]
        for l in range(32):
            g,t=l//4,l%4
            regs[l][i]= m[g][2*t:2*t+2] if not trans else [m[2*t][g], m[2*t+1][g]]
    return regs
def mma(C,A,B,i0,i1):
    Am=M(16,16); Bm=M(16,8); Cm=M(16,8)
    for l in range(32):
        g,t=l//4,l%4
        Am.d[g][2*t:2*t+2]=A[l][0]; Am.d[g+8][2*t:2*t+2]=A[l][1]; Am.d[g][2*t+8:2*t+10]=A[l][2]; Am.d[g+8][2*t+8:2*t+10]=A[l][3]
        Bm.d[2*t][g],Bm.d[2*t+1][g]=B[l][i0]; Bm.d[2*t+8][g],Bm.d[2*t+9][g]=B[l][i1]
        Cm.d[g][2*t:2*t+2]=C[l][0:2]; Cm.d[g+8][2*t:2*t+2]=C[l][2:4]
    P=matmul(Am,Bm)
    out=frag()
    for l in range(32):
        g,t=l//4,l%4
        out[l]=[Cm.d[g][2*t]+P.d[g][2*t],Cm.d[g][2*t+1]+P.d[g][2*t+1],Cm.d[g+8][2*t]+P.d[g+8][2*t],Cm.d[g+8][2*t+1]+P.d[g+8][2*t+1]]
    return out
def c_to_mat(c):
    R=M(16,8*len(c))
    for j in range(len(c)):
        for l in range(32):
            g,t=l//4,l%4
            R.d[g][8*j+2*t:8*j+2*t+2]=c[j][l][0:2]; R.d[g+8][8*j+2*t:8*j+2*t+2]=c[j][l][2:4]
    return R
def ldmatrix_x2(X, addr, trans=False):
    # .x2: lanes 0..15 address matrices 0, 1; the addresses of lanes 16..31 are ignored.
    rows=[addr(l) for l in range(16)]
    regs=[[[0,0] for _ in range(2)] for _ in range(32)]
    for i in range(2):
        m=[X.d[r][c:c+8] for (r,c) in rows[8*i:8*i+8]]
        for l in range(32):
            g,t=l//4,l%4
            regs[l][i]= m[g][2*t:2*t+2] if not trans else [m[2*t][g], m[2*t+1][g]]
    return regs
def half_tiles_b(X, row, col0, D):
    # The backward's phase-2 B loads of one k16 step over a warp's half row (columns col0 ..
    # col0 + D/2 - 1): yields (n8 tile index, b regs, i0, i1) exactly as the kernel pairs them.
    if (D//2//8) % 2 == 0:
        for n0 in range(0,D//2,16):
            b=ldmatrix_x4(X, lambda l:(row(l), col0+n0+(l//16)*8), trans=True)
            yield n0//8, b, 0, 1
            yield n0//8+1, b, 2, 3
    else:  # hd 16: one n8 tile, ldmatrix .x2 .trans at column col0
        b=ldmatrix_x2(X, lambda l:(row(l), col0), trans=True)
        yield 0, b, 0, 1
def check_layouts(D):
    BN=64; r0=16
    Q=randn(128,D); K=randn(BN,D); V=randn(BN,D)
    s=[frag() for _ in range(BN//8)]
    for k0 in range(0,D,16):
        a=ldmatrix_x4(Q, lambda l:(r0+l%16, k0+(l//16)*8))
        for n0 in range(0,BN,16):
            b=ldmatrix_x4(K, lambda l:(n0+l%8+(l//16)*8, k0+((l//8)%2)*8))
            s[n0//8]=mma(s[n0//8],a,b,0,1); s[n0//8+1]=mma(s[n0//8+1],a,b,2,3)
    errs={"S": maxerr(c_to_mat(s), matmul(sub(Q,r0,r0+16,0,D),T(K)))}
    P=c_to_mat(s)
    o=[frag() for _ in range(D//8)]
    for kk in range(BN//16):
        a=[[s[2*kk][l][0:2], s[2*kk][l][2:4], s[2*kk+1][l][0:2], s[2*kk+1][l][2:4]] for l in range(32)]
        for n0 in range(0,D,16):
            b=ldmatrix_x4(V, lambda l:(kk*16+l%8+((l//8)%2)*8, n0+(l//16)*8), trans=True)
            o[n0//8]=mma(o[n0//8],a,b,0,1); o[n0//8+1]=mma(o[n0//8+1],a,b,2,3)
    errs["PV"]=maxerr(c_to_mat(o), matmul(P,V))
    sl=16; qh=32; Qb=randn(64,D); dO=randn(64,D)
    st=[frag() for _ in range(4)]
    for k0 in range(0,D,16):
        a=ldmatrix_x4(K, lambda l:(sl+l%16, k0+(l//16)*8))
        for n0 in range(0,32,16):
            b=ldmatrix_x4(Qb, lambda l:(qh+n0+l%8+(l//16)*8, k0+((l//8)%2)*8))
            st[n0//8]=mma(st[n0//8],a,b,0,1); st[n0//8+1]=mma(st[n0//8+1],a,b,2,3)
    errs["S^T"]=maxerr(c_to_mat(st), matmul(sub(K,sl,sl+16,0,D), T(sub(Qb,qh,qh+32,0,D))))
    Pt=randn(64,64); dSt=randn(64,64)
    for dh in (0, D//2):  # both column halves (warps 0-3, 4-7)
        dv=[frag() for _ in range(D//16)]
        for kq in range(0,64,16):
            a=ldmatrix_x4(Pt, lambda l:(sl+l%16, kq+(l//16)*8))
            for j,b,i0,i1 in half_tiles_b(dO, lambda l:kq+l%8+((l//8)%2)*8, dh, D):
                dv[j]=mma(dv[j],a,b,i0,i1)
        errs["dV dh=%d"%dh]=maxerr(c_to_mat(dv), sub(matmul(Pt,dO),sl,sl+16,dh,dh+D//2))
        dq=[frag() for _ in range(D//16)]
        for kk in range(0,64,16):
            a=ldmatrix_x4(dSt, lambda l:(kk+l%8+(l//16)*8, sl+((l//8)%2)*8), trans=True)
            for j,b,i0,i1 in half_tiles_b(K, lambda l:kk+l%8+((l//8)%2)*8, dh, D):
                dq[j]=mma(dq[j],a,b,i0,i1)
        errs["dQ dh=%d"%dh]=maxerr(c_to_mat(dq), sub(matmul(T(dSt),K),sl,sl+16,dh,dh+D//2))
    # c_to_mat of D//16 fragments covers exactly D/2 columns: a fragment left unwritten or a
    # tile written twice shows up as an error of order 1.
    print("hd", D, " ".join("%s err %.1e" % kv for kv in errs.items()))
    return max(errs.values())
def check_banks(D):
    # The 8 row addresses of one ldmatrix phase (consecutive rows, same column) must fall into 8
    # different 16-byte groups of the 128-byte bank line: row stride (D + 8) bf16.
    ld_bytes=(D+8)*2
    return len({(r*ld_bytes//16)%8 for r in range(8)})==8
layout_bad=0
for D in (16,32,64,128):
    if check_layouts(D) > 1e-9: layout_bad+=1; print("layout error at hd", D)
    if not check_banks(D): layout_bad+=1; print("bank conflict at hd", D)
print("layout bad", layout_bad)

def vis(q,k,L,w): return q<L and k<=q and (w<=0 or q-k<w)
bad=0
for L in [1,2,17,63,64,65,127,128,129,130,200,253,300]:
  for w in [0,1,2,16,63,64,65,100,128,129,200,5000]:
    # forward
    for qt in range((L+127)//128):
      qf=qt*128; qr=min(128,L-qf); lq=qf+qr-1
      klo=max(0,qf-w+1) if w>0 else 0
      kb,ke=klo//64, lq//64
      for warp in range(8):
        wf=qf+warp*16; wl=min(qf+warp*16+15,lq)
        for kt in range((L+63)//64):
          kf=kt*64
          inrange = kb<=kt<=ke
          skip = (wf>wl) or kf>wl or (w>0 and kf+63<=wf-w)
          nm = kf+64>L or kf+63>wf or (w>0 and kf<=wl-w)
          for q in range(wf,wf+16):
            for k in range(kf,kf+64):
              v=vis(q,k,L,w)
              if v and (not inrange or skip): bad+=1; print("fwd missed",L,w,q,k)
              if q<=wl and not nm and not v and inrange and not skip: bad+=1; print("fwd unmasked",L,w,q,k)
    # backward: every visible (q,k) covered by the key tile's query-tile range
    for kt in range((L+63)//64):
      kf=kt*64; kr=min(64,L-kf); lk=kf+kr-1
      qend=min(L,lk+w) if w>0 else L
      qb=kf//64; nqt=(qend-1)//64-qb+1
      covered=set()
      for n in range(nqt):
        qf=(qb+n)*64
        assert qf<L
        covered.update(range(qf,min(qf+64,L)))
      for k in range(kf,lk+1):
        for q in range(L):
          if vis(q,k,L,w) and q not in covered: bad+=1; print("bwd missed",L,w,q,k)
print("bad", bad)
