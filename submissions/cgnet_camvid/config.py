# CGNet (Wu et al., IEEE TIP 2021) from MMSegmentation's zoo at its published size (M3N21:
# channels 32/64/128, 3 + 21 context-guided blocks, 0.49 M parameters) for CamVid's 11 classes,
# trained by `frugalbench train` from random initialisation (no pretrained weights).
_base_ = ['mmseg::_base_/models/cgnet.py']

norm_cfg = dict(type='BN', eps=1e-03, requires_grad=True)
num_classes = 11
crop_size = (256, 256)

model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(norm_cfg=norm_cfg),
    decode_head=dict(num_classes=num_classes, norm_cfg=norm_cfg, ignore_index=255,
                     # the zoo's class weights are Cityscapes' 19: drop them
                     loss_decode=dict(_delete_=True, type='CrossEntropyLoss', use_sigmoid=False,
                                      loss_weight=1.0, avg_non_ignore=True)),
    test_cfg=dict(mode='whole'))

# Read by `frugalbench train` (the harness owns the data pipeline and the budget). A short CPU
# schedule: about 2.5 s per iteration on one core, so 1,200 iterations take about an hour.
train_schedule = dict(
    iters=1200, batch_size=8, crop_size=crop_size,
    optimizer=dict(type='AdamW', lr=4e-3, weight_decay=0.01),
    poly_power=0.9, eta_min=1e-5, num_workers=0, checkpoint_interval=100)
